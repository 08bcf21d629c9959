-- IdeaMine schema, version 4 (SQLite): reporting views (SPEC §7). Time windows (7 and 30
-- days) and percentiles are applied by the store methods in stores/observability.py, which
-- compute them in Python; PostgreSQL has the same views with the windows built in.
CREATE VIEW run_timeline AS
SELECT p.run_id, p.phase, p.attempt, p.status, p.started_at, p.finished_at,
       m.duration_ms, m.tokens, m.cost_usd
FROM phases p
LEFT JOIN phase_metrics m
       ON m.run_id = p.run_id AND m.phase = p.phase AND m.attempt = p.attempt;

CREATE VIEW cost_by_phase AS
SELECT t.run_id, t.phase, COUNT(m.id) AS calls,
       COALESCE(SUM(m.tokens_in), 0) AS tokens_in, COALESCE(SUM(m.tokens_out), 0) AS tokens_out,
       COALESCE(SUM(m.cost_usd), 0) AS cost_usd
FROM tasks t JOIN model_calls m ON m.task_id = t.id
GROUP BY t.run_id, t.phase;

CREATE VIEW gate_success_metrics AS
SELECT phase, COUNT(*) AS evaluations, SUM(passed) AS passed, AVG(score) AS avg_score,
       MAX(created_at) AS last_at
FROM gate_evaluations GROUP BY phase;

CREATE VIEW recent_run_summary AS
SELECT r.id AS run_id, r.status, r.project, r.created_at, r.updated_at,
       (SELECT COUNT(*) FROM phases p WHERE p.run_id = r.id AND p.status = 'passed')
           AS phases_passed,
       (SELECT COALESCE(SUM(m.cost_usd), 0) FROM model_calls m WHERE m.run_id = r.id)
           AS cost_usd,
       (SELECT COALESCE(SUM(m.tokens_in + m.tokens_out), 0) FROM model_calls m
         WHERE m.run_id = r.id) AS tokens
FROM runs r ORDER BY r.created_at DESC LIMIT 100;
