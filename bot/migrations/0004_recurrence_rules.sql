-- Recurrence rules in one shape (documented in bot/recurrence.py and docs/bot.md):
--   {"kind": hourly|daily|weekly|monthly|yearly, "interval": N, "hour", "minute",
--    "weekdays": [0-6] (weekly), "day" (monthly, yearly), "month" (yearly), "start" (interval > 1)}
-- Rules written by earlier releases are rewritten: "weekdays" becomes weekly on Monday..Friday, a
-- weekly rule's "weekday": n becomes "weekdays": [n], and every rule gets "interval": 1. Each
-- statement touches only rows still in an older shape, so running it again changes nothing.
UPDATE reminders
   SET recurrence = (recurrence - 'kind') || '{"kind": "weekly", "weekdays": [0, 1, 2, 3, 4]}'::jsonb
 WHERE recurrence ->> 'kind' = 'weekdays';

UPDATE reminders
   SET recurrence = (recurrence - 'weekday') || jsonb_build_object('weekdays', jsonb_build_array(recurrence -> 'weekday'))
 WHERE recurrence ->> 'kind' = 'weekly' AND recurrence ? 'weekday' AND NOT recurrence ? 'weekdays';

UPDATE reminders
   SET recurrence = recurrence || '{"interval": 1}'::jsonb
 WHERE recurrence IS NOT NULL AND jsonb_typeof(recurrence) = 'object' AND NOT recurrence ? 'interval';
