-- IdeaMine schema, version 2 (PostgreSQL): signed release dossiers. Never edit a released file.
CREATE TABLE release_dossiers (
    id              TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL REFERENCES runs (id),
    project         TEXT NOT NULL,              -- runs.project, else the IdeaSpec title slug
    version         TEXT NOT NULL,              -- semantic version X.Y.Z
    content         TEXT NOT NULL,              -- canonical JSON of the signed dossier
    sha256          TEXT NOT NULL,              -- SHA-256 of the canonical JSON (the signature)
    fingerprint     TEXT NOT NULL,              -- hash of the run's last ledger event compiled
    created_at      TEXT NOT NULL,
    UNIQUE (run_id, sha256)
);
CREATE INDEX release_dossiers_run ON release_dossiers (run_id, created_at);
CREATE INDEX release_dossiers_project ON release_dossiers (project, created_at);
