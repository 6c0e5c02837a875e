-- Per-user preferences (language override, quiet hours, default snooze, a pending edit), paused
-- recurring reminders, reminders held by quiet hours, and the maintenance switch.
ALTER TABLE users
    ADD COLUMN IF NOT EXISTS lang           text CHECK (lang IN ('en', 'ru')),      -- the /lang choice; NULL: Telegram's
    ADD COLUMN IF NOT EXISTS telegram_lang  text,                                   -- language_code last seen (for deliveries)
    ADD COLUMN IF NOT EXISTS quiet_start    smallint CHECK (quiet_start BETWEEN 0 AND 1439),  -- minutes after local midnight
    ADD COLUMN IF NOT EXISTS quiet_end      smallint CHECK (quiet_end BETWEEN 0 AND 1439),
    ADD COLUMN IF NOT EXISTS snooze_minutes integer NOT NULL DEFAULT 10 CHECK (snooze_minutes BETWEEN 1 AND 1440),
    ADD COLUMN IF NOT EXISTS editing_id     bigint;                                 -- the reminder the next message edits

ALTER TABLE reminders DROP CONSTRAINT IF EXISTS reminders_status_check;
ALTER TABLE reminders ADD CONSTRAINT reminders_status_check
    CHECK (status IN ('pending', 'sending', 'done', 'cancelled', 'failed', 'paused'));
ALTER TABLE reminders ADD COLUMN IF NOT EXISTS quiet_held boolean NOT NULL DEFAULT false;  -- delayed by quiet hours

-- One row: while enabled, users get the message and nothing is delivered.
CREATE TABLE IF NOT EXISTS maintenance (
    id          smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    enabled     boolean NOT NULL DEFAULT false,
    message     text,                                 -- NULL: the catalogue's message
    since       timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO maintenance (id, enabled) VALUES (1, false) ON CONFLICT (id) DO NOTHING;
