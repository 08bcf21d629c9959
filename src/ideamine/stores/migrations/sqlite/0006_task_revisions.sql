-- Task revisions: every inserted task, and every change of a task's status or error, is
-- stamped one above the highest revision stored, so an advance step reads only the tasks
-- changed since its last read (`revision >= cursor`) instead of all of a run's tasks. SQLite
-- has one writer at a time, so stamps follow commit order. (Retention deletes only finished
-- runs, so a live run's own highest stamp stays and no stamp falls below its cursor.)
-- Never edit once released.

ALTER TABLE tasks ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tasks_revision ON tasks (run_id, revision);
CREATE INDEX tasks_revision_latest ON tasks (revision);

CREATE TRIGGER tasks_revision_insert AFTER INSERT ON tasks
BEGIN
    UPDATE tasks SET revision = (SELECT MAX(revision) FROM tasks) + 1 WHERE id = NEW.id;
END;

CREATE TRIGGER tasks_revision_update AFTER UPDATE OF status, error ON tasks
BEGIN
    UPDATE tasks SET revision = (SELECT MAX(revision) FROM tasks) + 1 WHERE id = NEW.id;
END;
