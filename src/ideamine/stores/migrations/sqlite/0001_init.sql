-- IdeaMine schema, version 1 (SQLite). Numbered files apply in order; never edit a released one.
CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    idea            TEXT NOT NULL,
    project         TEXT,                       -- groups runs of one product (for versions)
    constraints     TEXT NOT NULL,              -- JSON
    source          TEXT NOT NULL,
    status          TEXT NOT NULL,
    config_dir      TEXT,
    manifest        TEXT NOT NULL,              -- JSON: config file -> SHA-256
    manifest_hash   TEXT NOT NULL,
    driver          TEXT,                       -- host:pid of the process driving the run
    advance_owner   TEXT,                       -- who may plan and apply the run's next step
    advance_expires_at REAL,                    -- ... until then (a lease, so a dead one lapses)
    error           TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX runs_created ON runs (created_at);

CREATE TABLE run_configs (
    run_id          TEXT PRIMARY KEY REFERENCES runs (id),
    files           TEXT NOT NULL               -- JSON: config file -> its text, as pinned
);

CREATE TABLE phases (
    run_id          TEXT NOT NULL REFERENCES runs (id),
    phase           TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    status          TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    error           TEXT,
    PRIMARY KEY (run_id, phase, attempt)
);

CREATE TABLE tasks (
    id              TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL REFERENCES runs (id),
    phase           TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    key             TEXT NOT NULL,
    agent           TEXT NOT NULL,
    iteration       INTEGER NOT NULL,
    input           TEXT NOT NULL,              -- JSON
    status          TEXT NOT NULL,
    tries           INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_token     TEXT,
    lease_expires_at REAL,
    not_before      REAL NOT NULL DEFAULT 0,
    lease_seconds   REAL NOT NULL DEFAULT 180,  -- heartbeat interval x missed beats
    stalls          INTEGER NOT NULL DEFAULT 0, -- leases that expired (missed heartbeats)
    batch_scale     REAL NOT NULL DEFAULT 1,    -- the unsticker's smaller-batch factor
    timeout_scale   REAL NOT NULL DEFAULT 1,    -- the unsticker's longer-timeout factor
    model_shift     INTEGER NOT NULL DEFAULT 0, -- the unsticker's fallback-model steps
    checkpoint      TEXT,                       -- JSON saved by ctx.checkpoint()
    error           TEXT,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    UNIQUE (run_id, phase, attempt, key)
);
CREATE INDEX tasks_claim ON tasks (run_id, status, not_before);

CREATE TABLE task_outputs (
    run_id          TEXT NOT NULL,
    phase           TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    key             TEXT NOT NULL,
    task_id         TEXT NOT NULL REFERENCES tasks (id),
    output          TEXT NOT NULL,              -- canonical JSON
    output_hash     TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (run_id, phase, attempt, key)   -- written once (invariant 2)
);

CREATE TABLE model_calls (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT NOT NULL,
    task_id         TEXT NOT NULL REFERENCES tasks (id),
    provider        TEXT NOT NULL,
    model           TEXT NOT NULL,
    prompt_hash     TEXT NOT NULL,
    params          TEXT NOT NULL,
    tokens_in       INTEGER NOT NULL,
    tokens_out      INTEGER NOT NULL,
    cost_usd        REAL NOT NULL,
    latency_ms      REAL NOT NULL,
    outcome         TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX model_calls_run ON model_calls (run_id);

CREATE TABLE blobs (
    hash            TEXT PRIMARY KEY,           -- SHA-256 of content
    content         TEXT NOT NULL               -- canonical JSON
);

CREATE TABLE artifacts (
    id              TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL REFERENCES runs (id),
    phase           TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    type            TEXT NOT NULL,
    version         INTEGER NOT NULL,
    content_hash    TEXT NOT NULL REFERENCES blobs (hash),
    provenance      TEXT NOT NULL,              -- JSON
    created_at      TEXT NOT NULL,
    UNIQUE (run_id, type, version)
);

CREATE TABLE events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, even after retention
    run_id          TEXT NOT NULL,
    phase           TEXT,
    task_id         TEXT,
    type            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    at              TEXT NOT NULL,
    payload         TEXT NOT NULL,              -- canonical JSON
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL
);
CREATE INDEX events_run ON events (run_id, id);

CREATE TABLE phase_metrics (
    run_id          TEXT NOT NULL REFERENCES runs (id),
    phase           TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    status          TEXT NOT NULL,              -- passed | failed
    duration_ms     REAL NOT NULL,
    tokens          INTEGER NOT NULL,
    cost_usd        REAL NOT NULL,
    tasks           INTEGER NOT NULL,
    retries         INTEGER NOT NULL,
    recorded_at     TEXT NOT NULL,
    PRIMARY KEY (run_id, phase, attempt)
);

CREATE TABLE gate_evaluations (
    id              TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL REFERENCES runs (id),
    phase           TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    passed          INTEGER NOT NULL,           -- 0 or 1
    score           REAL NOT NULL,
    threshold       REAL NOT NULL,
    result          TEXT NOT NULL,              -- JSON GateResult
    created_at      TEXT NOT NULL
);
CREATE INDEX gate_evaluations_run ON gate_evaluations (run_id, phase, attempt);
