-- Results of the backup job (compose/backup): every run, drill, prune and restore, and every failure.
-- Written by the backup tool, read by the bot's admin /status. Defined here, once.
CREATE TABLE IF NOT EXISTS backup_runs (
    id            bigserial PRIMARY KEY,
    kind          text        NOT NULL CHECK (kind IN ('backup', 'drill', 'prune', 'restore', 'upload')),
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL DEFAULT now(),
    ok            boolean     NOT NULL,
    object_key    text,                 -- the Spaces key (or local file name) of the backup concerned
    size_bytes    bigint,               -- encrypted size of the backup
    uploaded      boolean,              -- false while only the local copy exists (Spaces unreachable)
    detail        text                  -- one line: what happened, or the error
);
CREATE INDEX IF NOT EXISTS backup_runs_kind_finished ON backup_runs (kind, finished_at DESC);
