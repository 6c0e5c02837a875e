-- The per-user cap on reminders still to come (bot/limits.py), checked inside the insert itself:
-- `INSERT … SELECT … WHERE reminders_to_come_locked(user) < cap`, one statement that psycopg
-- prepares, one round trip (bot/store.py add_reminder).
--
-- Why a function: the insert's own snapshot is taken when the statement starts, before any lock
-- it takes, so a count inside a plain statement could miss another message's reminder committed
-- while this one waited. A VOLATILE function takes a fresh snapshot for each statement it runs
-- (READ COMMITTED), so the count below runs after the lock is held and sees every reminder
-- committed before it was granted. The lock is the user's row lock, the one a snooze takes before
-- its own count (bot/store.py apply_action), so the two are serialised as well. It is held to
-- the end of the caller's transaction. CREATE OR REPLACE: the migration may run again after a
-- restore of an older backup (docs/backups.md).
CREATE OR REPLACE FUNCTION reminders_to_come_locked(uid bigint) RETURNS bigint
    LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM users WHERE user_id = uid FOR UPDATE;
    RETURN (SELECT count(*) FROM reminders
            WHERE user_id = uid AND status IN ('pending', 'sending', 'paused'));
END
$$;
