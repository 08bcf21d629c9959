-- The reaper looks for running tasks whose lease has expired (`status = 'running' AND
-- lease_expires_at < now`, oldest first). No index led with either column, so every look
-- scanned the whole `tasks` table, the tasks of every run the store ever held, every few
-- seconds in every process. This partial index holds running tasks only, in expiry order.
-- Never edit once released.

CREATE INDEX tasks_leased ON tasks (lease_expires_at) WHERE status = 'running';
