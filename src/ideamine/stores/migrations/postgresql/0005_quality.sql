-- The quality loop (gates, Q/A/V, knowledge, clarification, waivers, budgets) and evidence.
-- Never edit once released: add a numbered file instead.

-- Options a run was started with: ask (clarification pauses the run), strict_evidence,
-- advisories (an OSV folder), added budget (`resume --add-budget`). JSON.
CREATE TABLE run_options (
    run_id          TEXT PRIMARY KEY REFERENCES runs (id),
    options         TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

-- Questions the Q/A/V loop asked about a phase attempt's draft, and what became of them.
CREATE TABLE questions (
    id              TEXT PRIMARY KEY,           -- run.phase.attempt.Q<iteration>.<n>
    run_id          TEXT NOT NULL REFERENCES runs (id),
    phase           TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    iteration       INTEGER NOT NULL,
    rank            INTEGER NOT NULL,
    text            TEXT NOT NULL,
    topic           TEXT NOT NULL,
    status          TEXT NOT NULL,              -- accepted | rejected | unknown | open | answered
    created_at      TEXT NOT NULL
);
CREATE INDEX questions_run ON questions (run_id, phase, attempt);

-- Answers (from the answer agent or a person) with their citations and validation scores.
CREATE TABLE answers (
    id              TEXT PRIMARY KEY,
    question_id     TEXT NOT NULL REFERENCES questions (id),
    run_id          TEXT NOT NULL REFERENCES runs (id),
    source          TEXT NOT NULL,              -- agent | person
    text            TEXT NOT NULL,
    citations       TEXT NOT NULL,              -- JSON list
    validation      TEXT,                       -- JSON scores, null for a person's answer
    accepted        INTEGER NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX answers_run ON answers (run_id);

-- Accepted answers bound into the run's knowledge (kmap.delta lists them).
CREATE TABLE bindings (
    id              TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL REFERENCES runs (id),
    phase           TEXT NOT NULL,
    question_id     TEXT NOT NULL,
    answer_id       TEXT NOT NULL,
    frame_id        TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX bindings_run ON bindings (run_id);

-- The knowledge base: deduplicated frames (id = hash of the normalised subject and text),
-- shared by every run in the store, searchable by full text.
CREATE TABLE knowledge_frames (
    id              TEXT PRIMARY KEY,
    subject         TEXT NOT NULL,
    text            TEXT NOT NULL,
    provenance      TEXT NOT NULL,              -- JSON: first run, phase, question, citations
    uses            INTEGER NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX knowledge_search ON knowledge_frames
    USING GIN (to_tsvector('english', subject || ' ' || text));

-- Assumptions a run went on with (unknown or rejected answers, open questions, intake gaps).
CREATE TABLE assumptions (
    id              TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL REFERENCES runs (id),
    phase           TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    question_id     TEXT,
    text            TEXT NOT NULL,
    reason          TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX assumptions_run ON assumptions (run_id);

-- A person's waiver of a failed gate, with its justification and expiry.
CREATE TABLE waivers (
    id              TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL REFERENCES runs (id),
    phase           TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX waivers_run ON waivers (run_id, phase);

-- Retention deletes whole runs: now with their quality-loop rows (knowledge frames stay: they
-- are shared by every run).
CREATE OR REPLACE FUNCTION cleanup_old_ledger_entries(p_days INTEGER)
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
    DELETE FROM bindings WHERE run_id = ANY (doomed);
    DELETE FROM answers WHERE run_id = ANY (doomed);
    DELETE FROM assumptions WHERE run_id = ANY (doomed);
    DELETE FROM questions WHERE run_id = ANY (doomed);
    DELETE FROM waivers WHERE run_id = ANY (doomed);
    DELETE FROM run_options WHERE run_id = ANY (doomed);
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
