-- Questions the bot asked instead of guessing ("at 5": 05:00 or 17:00?). The readings are kept
-- here, server-side; a button carries only the question's id and the reading's index. A question
-- is answered once (the row is deleted when a reading is saved or the question dismissed) and
-- expires after a day.
CREATE TABLE IF NOT EXISTS questions (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    chat_id     bigint NOT NULL,
    tz          text   NOT NULL,
    readings    jsonb  NOT NULL,      -- [{"due_at": ISO 8601, "recurrence": rule | null, "text": ...}]
    source      text,                 -- the phrase the user wrote
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS questions_user ON questions (user_id, created_at);
