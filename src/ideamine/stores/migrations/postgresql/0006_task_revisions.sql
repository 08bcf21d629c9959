-- Task revisions: every inserted task, and every change of a task's status or error, is
-- stamped with its transaction's id, so an advance step reads only the tasks changed since its
-- last read. Concurrent writers commit out of id order, so the reader's cursor is the oldest
-- transaction still running when it read (its snapshot's xmin): rows stamped at or after it
-- are read again next time. Never edit once released.

ALTER TABLE tasks ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tasks_revision ON tasks (run_id, revision);

CREATE FUNCTION stamp_task_revision() RETURNS trigger AS $fn$
BEGIN
    NEW.revision := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END
$fn$ LANGUAGE plpgsql;

CREATE TRIGGER tasks_revision_insert BEFORE INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION stamp_task_revision();

CREATE TRIGGER tasks_revision_update BEFORE UPDATE OF status, error ON tasks
    FOR EACH ROW EXECUTE FUNCTION stamp_task_revision();
