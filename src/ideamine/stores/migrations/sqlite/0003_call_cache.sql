-- The model call cache (one reply per call key, first write wins) and the model override a
-- run was started with (`ideamine run --model` / $IDEAMINE_MODEL), so resume and replay use it.
CREATE TABLE call_cache (
    key             TEXT PRIMARY KEY,           -- SHA-256 of provider, model, prompt, params, schema
    provider        TEXT NOT NULL,
    model           TEXT NOT NULL,
    reply           TEXT NOT NULL,              -- the model's raw reply text
    tokens_in       INTEGER NOT NULL,
    tokens_out      INTEGER NOT NULL,
    created_at      TEXT NOT NULL
);

CREATE TABLE run_models (
    run_id          TEXT PRIMARY KEY REFERENCES runs (id),
    model           TEXT NOT NULL,              -- provider:model
    created_at      TEXT NOT NULL
);
