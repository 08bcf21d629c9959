-- Every statement that inserts a task or changes a task's status or error now sets
-- `revision` itself to its transaction's id (`Db.next_task_revision`, read once per
-- transaction), the value the BEFORE triggers of migration 6 stamped: the change feed's
-- snapshot reasoning is unchanged. The triggers ran a plpgsql function for every written task
-- row, three times per task; they are dropped with it (SQLite's migration 8 drops its own).
-- Never edit once released.

DROP TRIGGER tasks_revision_insert ON tasks;
DROP TRIGGER tasks_revision_update ON tasks;
DROP FUNCTION stamp_task_revision();
