-- Claims read pending tasks only (`claimable` and `any_claimable`, which spell the status in
-- their SQL so a partial index serves them). Migration 9's `tasks_claim` held every task, so
-- leasing a task and finishing it each moved its entry (~5 µs a write here, twice a task).
-- It now holds pending tasks only, in the claim order: a lease drops the entry, a finish
-- touches none. The status stays in its key: with `run_id` its only equality term, SQLite's
-- planner chose `tasks_revision (run_id, revision)` instead and read the run's every task.
--
-- `tasks_revision_latest` (migration 6) only told a transaction the highest revision stamp
-- stored (`SELECT MAX(revision)`), and every stamped write moved an entry of it. The highest
-- stamp handed out is kept in `task_revision` (one row) instead; it never goes down, even
-- when retention deletes the rows that carried it. Never edit once released.

DROP INDEX tasks_claim;
CREATE INDEX tasks_claim ON tasks (run_id, status, created_at, phase, key)
    WHERE status = 'pending';

DROP INDEX tasks_revision_latest;
CREATE TABLE task_revision (last INTEGER NOT NULL);
INSERT INTO task_revision (last) SELECT COALESCE(MAX(revision), 0) FROM tasks;
