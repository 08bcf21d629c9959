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
-- shared by every run in the store, searchable by full text (the store writes each new frame
-- into knowledge_search in the same transaction).
CREATE TABLE knowledge_frames (
    id              TEXT PRIMARY KEY,
    subject         TEXT NOT NULL,
    text            TEXT NOT NULL,
    provenance      TEXT NOT NULL,              -- JSON: first run, phase, question, citations
    uses            INTEGER NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE VIRTUAL TABLE knowledge_search USING fts5 (
    subject, text, content = 'knowledge_frames', content_rowid = 'rowid'
);

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
