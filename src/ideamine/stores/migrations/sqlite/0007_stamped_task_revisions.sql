-- Task revisions stamped by the statements that write them: inserting tasks, leasing them
-- and finishing them (every task passes through these three, a wide phase's 2,000 at a time)
-- set `revision` themselves, one above the highest stored. The triggers of migration 6
-- rewrote each such row a second time; they now stamp only a write that did not: a task
-- inserted with revision 0, or a status or error changed with the revision left as it was.
-- Never edit once released.

DROP TRIGGER tasks_revision_insert;
DROP TRIGGER tasks_revision_update;

CREATE TRIGGER tasks_revision_insert AFTER INSERT ON tasks WHEN NEW.revision = 0
BEGIN
    UPDATE tasks SET revision = (SELECT MAX(revision) FROM tasks) + 1 WHERE id = NEW.id;
END;

CREATE TRIGGER tasks_revision_update AFTER UPDATE OF status, error ON tasks
WHEN NEW.revision = OLD.revision
BEGIN
    UPDATE tasks SET revision = (SELECT MAX(revision) FROM tasks) + 1 WHERE id = NEW.id;
END;
