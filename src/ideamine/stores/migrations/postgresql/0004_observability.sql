-- IdeaMine schema, version 4 (PostgreSQL): reporting views and functions (SPEC §7).
-- Times are stored as ISO-8601 text (the ledger hashes them as text), hence the casts.
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

CREATE VIEW phase_performance AS
SELECT phase, COUNT(*) AS attempts,
       AVG(duration_ms) AS avg_ms,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS median_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms,
       AVG(cost_usd) AS avg_cost_usd,
       AVG(CASE WHEN status = 'passed' THEN 1.0 ELSE 0.0 END) AS success_rate
FROM phase_metrics
WHERE recorded_at::timestamptz > now() - interval '7 days'
GROUP BY phase;

CREATE VIEW gate_success_metrics AS
SELECT phase, COUNT(*) AS evaluations, SUM(passed) AS passed, AVG(score) AS avg_score,
       MAX(created_at) AS last_at
FROM gate_evaluations
WHERE created_at::timestamptz > now() - interval '30 days'
GROUP BY phase;

CREATE VIEW recent_run_summary AS
SELECT r.id AS run_id, r.status, r.project, r.created_at, r.updated_at,
       (SELECT COUNT(*) FROM phases p WHERE p.run_id = r.id AND p.status = 'passed')
           AS phases_passed,
       (SELECT COALESCE(SUM(m.cost_usd), 0) FROM model_calls m WHERE m.run_id = r.id)
           AS cost_usd,
       (SELECT COALESCE(SUM(m.tokens_in + m.tokens_out), 0) FROM model_calls m
         WHERE m.run_id = r.id) AS tokens
FROM runs r ORDER BY r.created_at DESC LIMIT 100;

CREATE FUNCTION get_cost_breakdown(p_run TEXT)
RETURNS TABLE (phase TEXT, calls BIGINT, tokens_in BIGINT, tokens_out BIGINT,
               cost_usd DOUBLE PRECISION)
LANGUAGE sql STABLE AS $fn$
    SELECT c.phase, c.calls, c.tokens_in::BIGINT, c.tokens_out::BIGINT, c.cost_usd
    FROM cost_by_phase c WHERE c.run_id = p_run ORDER BY c.phase
$fn$;

CREATE FUNCTION get_gate_history(p_run TEXT)
RETURNS TABLE (phase TEXT, attempt INTEGER, passed INTEGER, score DOUBLE PRECISION,
               threshold DOUBLE PRECISION, created_at TEXT)
LANGUAGE sql STABLE AS $fn$
    SELECT g.phase, g.attempt, g.passed, g.score, g.threshold, g.created_at
    FROM gate_evaluations g WHERE g.run_id = p_run ORDER BY g.created_at, g.phase, g.attempt
$fn$;

CREATE FUNCTION get_avg_phase_duration(p_phase TEXT, p_days INTEGER)
RETURNS DOUBLE PRECISION
LANGUAGE sql STABLE AS $fn$
    SELECT AVG(duration_ms) FROM phase_metrics
    WHERE phase = p_phase AND recorded_at::timestamptz > now() - make_interval(days => p_days)
$fn$;

CREATE FUNCTION cleanup_old_phase_metrics(p_days INTEGER)
RETURNS BIGINT
LANGUAGE sql AS $fn$
    WITH gone AS (
        DELETE FROM phase_metrics
        WHERE recorded_at::timestamptz < now() - make_interval(days => p_days)
        RETURNING 1)
    SELECT COUNT(*) FROM gone
$fn$;

-- Retention removes whole finished runs only, so every remaining chain still verifies.
CREATE FUNCTION cleanup_old_ledger_entries(p_days INTEGER)
RETURNS BIGINT
LANGUAGE plpgsql AS $fn$
DECLARE
    doomed TEXT[];
BEGIN
    SELECT array_agg(id) INTO doomed FROM runs
    WHERE status IN ('completed', 'failed', 'cancelled')
      AND updated_at::timestamptz < now() - make_interval(days => p_days);
    IF doomed IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM release_dossiers WHERE run_id = ANY (doomed);
    DELETE FROM gate_evaluations WHERE run_id = ANY (doomed);
    DELETE FROM phase_metrics WHERE run_id = ANY (doomed);
    DELETE FROM model_calls WHERE run_id = ANY (doomed);
    DELETE FROM task_outputs WHERE run_id = ANY (doomed);
    DELETE FROM artifacts WHERE run_id = ANY (doomed);
    DELETE FROM tasks WHERE run_id = ANY (doomed);
    DELETE FROM phases WHERE run_id = ANY (doomed);
    DELETE FROM events WHERE run_id = ANY (doomed);
    DELETE FROM run_configs WHERE run_id = ANY (doomed);
    DELETE FROM run_models WHERE run_id = ANY (doomed);
    DELETE FROM runs WHERE id = ANY (doomed);
    RETURN array_length(doomed, 1);
END
$fn$;
