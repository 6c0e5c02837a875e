-- One row per /edit (command or ✏️ button): the reminder as it was before (what ↩ Undo on the
-- edit's confirmation restores) and as the edit left it (Undo refuses when the reminder is no
-- longer so: edited again, delivered, paused, cancelled since). The button carries only this
-- row's id (`ue:<id>`, bot/callbacks.py); an undone edit is marked, so a second press changes
-- nothing. The newest 20 per user are kept (bot/store.py edit_reminder). IF NOT EXISTS: the
-- migration may run again after a restore of an older backup (docs/backups.md).
CREATE TABLE IF NOT EXISTS reminder_edits (
    id              bigserial PRIMARY KEY,
    reminder_id     bigint NOT NULL REFERENCES reminders (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    old_text        text   NOT NULL,
    old_tz          text   NOT NULL,
    old_recurrence  jsonb,
    old_due_at      timestamptz NOT NULL,
    old_status      text   NOT NULL,
    new_text        text   NOT NULL,
    new_tz          text   NOT NULL,
    new_recurrence  jsonb,
    new_due_at      timestamptz NOT NULL,
    new_status      text   NOT NULL,
    new_updated_at  timestamptz NOT NULL,     -- the reminder's updated_at the edit wrote
    created_at      timestamptz NOT NULL DEFAULT now(),
    undone_at       timestamptz
);
CREATE INDEX IF NOT EXISTS reminder_edits_reminder ON reminder_edits (reminder_id, id);
CREATE INDEX IF NOT EXISTS reminder_edits_user ON reminder_edits (user_id, id);
