-- The bot's own schema: users (allowed users only: strangers are never stored), reminders, and one
-- delivery record per reminder occurrence (the idempotency record of the scheduler).
-- Idempotent (IF NOT EXISTS), as every migration: a restore of an older backup leaves the tables the
-- backup lacks, and the migrations then run again over them (docs/backups.md, "Schema versions").
CREATE TABLE IF NOT EXISTS users (
    user_id     bigint PRIMARY KEY,
    chat_id     bigint NOT NULL,
    tz          text,                          -- NULL: DEFAULT_TIMEZONE applies
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS reminders (
    id            bigserial PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    chat_id       bigint NOT NULL,
    text          text   NOT NULL,
    tz            text   NOT NULL,             -- the zone whose wall clock a recurrence keeps
    recurrence    jsonb,                       -- NULL: one-shot; else {"kind": ..., "hour": ...}
    due_at        timestamptz NOT NULL,        -- the next occurrence
    status        text   NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'sending', 'done', 'cancelled', 'failed')),
    hold_until    timestamptz,                 -- retry back-off after a failed send
    attempts      integer NOT NULL DEFAULT 0,
    source        text,                        -- the phrase the user wrote
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS reminders_due ON reminders (due_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS reminders_user ON reminders (user_id, status, due_at);

CREATE TABLE IF NOT EXISTS deliveries (
    id            bigserial PRIMARY KEY,
    reminder_id   bigint NOT NULL REFERENCES reminders (id) ON DELETE CASCADE,
    user_id       bigint NOT NULL,
    chat_id       bigint NOT NULL,
    occurrence    timestamptz NOT NULL,        -- the due time this delivery is for
    state         text NOT NULL DEFAULT 'sending' CHECK (state IN ('sending', 'sent', 'failed')),
    in_doubt      boolean NOT NULL DEFAULT false,  -- a crash happened while it was on the wire
    message_id    bigint,
    late_seconds  integer,
    action        text,                        -- the first button pressed: done/snooze10/...
    action_at     timestamptz,
    error         text,
    claimed_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    UNIQUE (reminder_id, occurrence)
);
CREATE INDEX IF NOT EXISTS deliveries_sending ON deliveries (state) WHERE state = 'sending';
