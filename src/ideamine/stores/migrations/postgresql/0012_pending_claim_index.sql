-- Claims read pending tasks only (`claimable` and `any_claimable`, which spell the status in
-- their SQL so a partial index serves them). Migration 9's `tasks_claim` held every task, and
-- each lease and finish of a task added an entry for the row's new version; it now holds
-- pending tasks only, in the claim order (the status stays in its key, as on SQLite, whose
-- planner needs it). SQLite's migration 12 also replaces its highest-stamp index; PostgreSQL
-- stamps transaction ids. Never edit once released.

DROP INDEX tasks_claim;
CREATE INDEX tasks_claim ON tasks (run_id, status, created_at, phase, key)
    WHERE status = 'pending';
