"""Every user-visible string, in English and Russian, in one place.

`t(lang, key, **fields)` formats one entry. The user's language is their `/lang` choice, else
Telegram's `language_code` (Russian for `ru*`, English otherwise). A test checks that every key
exists in both languages with the same fields, and that no handler sends a literal of its own.
"""
from __future__ import annotations

LANGS = ("en", "ru")
DEFAULT_LANG = "en"

# the examples and the command list, each language side by side; "help" shows both languages' examples
_EXAMPLES = {
    "en": (
        "/remind in 10 minutes tea\n"
        "remind me tomorrow at 9 to call mom\n"
        "at 18:30 gym · on 1 December 18:00 pay rent · next monday 10:00 standup\n"
        "every day at 9 pills · every weekday 8:30 standup · every monday 10:00 review · "
        "every month on the 1st rent\n"
        "in 1.5 hours laundry · tonight at 11 bed · every 2 weeks on friday sync · "
        "every year on March 8 flowers"),
    "ru": (
        "через 10 минут чай · напомни завтра в 9 позвонить маме · в 18:30 спорт · "
        "1 декабря в 18:00 оплатить · в следующий понедельник в 10 встреча\n"
        "каждый день в 9 таблетки · по будням в 8:30 зарядка · каждый понедельник в 10:00 планёрка · "
        "каждый месяц 1 числа квартплата\n"
        "через полтора часа стирка · сегодня в 11 вечера спать · каждые 2 недели в пятницу отчёт · "
        "каждый год 8 марта цветы"),
}
_COMMANDS = {
    "en": (
        "/list — upcoming reminders (with cancel, edit and pause buttons)\n"
        "/cancel N — cancel reminder #N\n"
        "/edit N <new time and/or text> — change reminder #N\n"
        "/pause N, /resume N — pause or resume a recurring reminder\n"
        "/quiet 22:00-08:00 — quiet hours (/quiet off)\n"
        "/snooze 15 — the snooze button's minutes\n"
        "/tz Europe/Berlin — set your time zone\n"
        "/lang ru — язык: русский\n"
        "/export — your data as a JSON file\n"
        "/help — this message"),
    "ru": (
        "/list — предстоящие напоминания (с кнопками отмены, правки и паузы)\n"
        "/cancel N — отменить напоминание #N\n"
        "/edit N <новое время и/или текст> — изменить напоминание #N\n"
        "/pause N, /resume N — приостановить или возобновить повторяющееся напоминание\n"
        "/quiet 22:00-08:00 — тихие часы (/quiet off — выключить)\n"
        "/snooze 15 — на сколько минут откладывает кнопка «отложить»\n"
        "/tz Europe/Moscow — ваш часовой пояс\n"
        "/lang en — language: English\n"
        "/export — ваши данные файлом JSON\n"
        "/help — эта справка"),
}

MESSAGES: dict[str, dict[str, str]] = {
    # -- help and settings ---------------------------------------------------------------------
    "help": {
        "en": "I remind you of things, in your time zone.\n\nExamples (English):\n" + _EXAMPLES["en"]
              + "\n\nПримеры (по-русски):\n" + _EXAMPLES["ru"] + "\n\n" + _COMMANDS["en"],
        "ru": "Я напоминаю о делах в вашем часовом поясе.\n\nПримеры:\n" + _EXAMPLES["ru"]
              + "\n\nExamples (English):\n" + _EXAMPLES["en"] + "\n\n" + _COMMANDS["ru"],
    },
    "start": {"en": "Hi! {help}\n\nYour time zone: {tz}", "ru": "Привет! {help}\n\nВаш часовой пояс: {tz}"},
    "tz_show": {"en": "Your time zone: {tz}. Change it with /tz Europe/Berlin",
                "ru": "Ваш часовой пояс: {tz}. Сменить: /tz Europe/Moscow"},
    "tz_unknown": {"en": "Unknown time zone {zone}. Use an IANA name such as Europe/Berlin, "
                         "America/New_York, Asia/Tokyo.",
                   "ru": "Неизвестный часовой пояс {zone}. Укажите имя IANA, например Europe/Moscow, "
                         "Europe/Berlin, Asia/Tokyo."},
    "tz_set": {"en": "✅ Time zone set to {tz} (local time now {time}).",
               "ru": "✅ Часовой пояс: {tz} (сейчас там {time})."},
    "lang_show": {"en": "Language: English. /lang ru — по-русски; /lang auto — from Telegram.",
                  "ru": "Язык: русский. /lang en — English; /lang auto — как в Telegram."},
    "lang_set": {"en": "✅ I will speak English.", "ru": "✅ Буду говорить по-русски."},
    "lang_auto": {"en": "✅ Language follows your Telegram settings.",
                  "ru": "✅ Язык — как в настройках Telegram."},
    "lang_usage": {"en": "Usage: /lang en | ru | auto", "ru": "Использование: /lang en | ru | auto"},
    "quiet_show": {"en": "Quiet hours: {start}–{end} ({tz}). Nothing is delivered then; reminders "
                         "due in them arrive when they end. /quiet off to remove.",
                   "ru": "Тихие часы: {start}–{end} ({tz}). В это время ничего не приходит; "
                         "напоминания придут, когда они закончатся. /quiet off — выключить."},
    "quiet_none": {"en": "No quiet hours. Set them with /quiet 22:00-08:00",
                   "ru": "Тихие часы не заданы. Задать: /quiet 22:00-08:00"},
    "quiet_off": {"en": "✅ Quiet hours removed.", "ru": "✅ Тихие часы выключены."},
    "quiet_usage": {"en": "Usage: /quiet 22:00-08:00 (or /quiet off)",
                    "ru": "Использование: /quiet 22:00-08:00 (или /quiet off)"},
    "snooze_show": {"en": "The snooze button waits {minutes} min. Change it with /snooze 15",
                    "ru": "Кнопка «отложить» откладывает на {minutes} мин. Изменить: /snooze 15"},
    "snooze_set": {"en": "✅ Snooze: {minutes} min.", "ru": "✅ Отложить: на {minutes} мин."},
    "snooze_usage": {"en": "Usage: /snooze N (minutes, 1–1440)",
                     "ru": "Использование: /snooze N (минуты, 1–1440)"},
    # -- creating ------------------------------------------------------------------------------
    "unparsed": {"en": "I could not find a time in that. Try for example:\n" + _EXAMPLES["en"],
                 "ru": "Не понял, когда напомнить. Например:\n" + _EXAMPLES["ru"]},
    "past": {"en": "That time has already passed.", "ru": "Это время уже прошло."},
    "too_long": {"en": "That is too long: a reminder's text may have at most {limit} characters.",
                 "ru": "Слишком длинно: в тексте напоминания не больше {limit} символов."},
    "out_of_range": {"en": "That is too far away: at most 10 years ahead.",
                     "ru": "Слишком далеко: не больше чем на 10 лет вперёд."},
    "cap_reached": {"en": "You already have {limit} upcoming reminders, the most one person can keep. "
                          "Nothing was saved: cancel some first (/list).",
                    "ru": "У вас уже {limit} предстоящих напоминаний — больше хранить нельзя. "
                          "Ничего не сохранено: сначала отмените какие-нибудь (/list)."},
    "saved": {"en": "✅ Reminder #{id}: {text}\n🗓 {when}", "ru": "✅ Напоминание #{id}: {text}\n🗓 {when}"},
    "next": {"en": "{rule} — next: {when}", "ru": "{rule} — следующее: {when}"},
    "due_in": {"en": "⏳ in {delay}", "ru": "⏳ через {delay}"},
    "btn_undo": {"en": "↩ Undo", "ru": "↩ Отменить"},
    "ans_undone": {"en": "Undone: #{id} removed", "ru": "Отменено: #{id} удалено"},
    "label_undone": {"en": "↩ Undone: #{id} {text} is not kept.", "ru": "↩ Отменено: #{id} {text} не сохранено."},
    "note_month_day_today": {"en": "ℹ️ No day of the month given: I took today's, the {day}.",
                             "ru": "ℹ️ День месяца не указан: взял сегодняшний, {day}-е."},
    "note_year_day_today": {"en": "ℹ️ No date given: I took today's, {date}.",
                            "ru": "ℹ️ Дата не указана: взял сегодняшнюю, {date}."},
    "note_weekday_today": {"en": "ℹ️ No day of the week given: I took today's, {weekday}.",
                           "ru": "ℹ️ День недели не указан: взял сегодняшний, {weekday}."},
    # -- asking instead of guessing ------------------------------------------------------------
    "ask": {"en": "🤔 I am not sure when you mean: “{phrase}”. Which one?",
            "ru": "🤔 Не уверен, когда именно: «{phrase}». Что вы имели в виду?"},
    "ask_words": {"en": "(I did not use these words: {words})", "ru": "(эти слова я не понял как время: {words})"},
    "ask_today": {"en": "Today", "ru": "Сегодня"},
    "ask_tomorrow": {"en": "Tomorrow", "ru": "Завтра"},
    "btn_dismiss": {"en": "✖ Cancel", "ru": "✖ Отмена"},
    "ans_picked": {"en": "Saved #{id}", "ru": "Сохранено #{id}"},
    "ans_dismissed": {"en": "Nothing saved", "ru": "Ничего не сохранено"},
    "ans_question_gone": {"en": "This question has expired: please send the reminder again.",
                          "ru": "Этот вопрос устарел: пришлите напоминание ещё раз."},
    "label_dismissed": {"en": "✖ Not saved.", "ru": "✖ Не сохранено."},
    "ambiguous": {"en": "I am not sure when you mean: {readings}. Please say it another way, e.g. "
                        "“tomorrow at 17:00”.",
                  "ru": "Не уверен, когда именно: {readings}. Скажите иначе, например «завтра в 17:00»."},
    "too_frequent": {"en": "That is too often: a repeating reminder may come at most every hour.",
                     "ru": "Слишком часто: повторяющееся напоминание — не чаще раза в час."},
    # -- list, cancel, edit, pause -------------------------------------------------------------
    "list_empty": {"en": "No upcoming reminders.", "ru": "Нет предстоящих напоминаний."},
    "list_header": {"en": "Upcoming reminders:", "ru": "Предстоящие напоминания:"},
    "list_more": {"en": "… and {n} more", "ru": "… и ещё {n}"},
    "list_footer": {"en": "Buttons: ✖ cancel, ✏️ edit, ⏸/▶ pause/resume. Or /cancel N, /edit N …",
                    "ru": "Кнопки: ✖ отменить, ✏️ изменить, ⏸/▶ пауза. Или /cancel N, /edit N …"},
    "paused_mark": {"en": "⏸ paused", "ru": "⏸ на паузе"},
    "cancel_usage": {"en": "Usage: /cancel N (the number shown by /list)",
                     "ru": "Использование: /cancel N (номер из /list)"},
    "no_reminder": {"en": "No upcoming reminder #{id}.", "ru": "Нет предстоящего напоминания #{id}."},
    "cancelled": {"en": "✖ Cancelled #{id}: {text}", "ru": "✖ Отменено #{id}: {text}"},
    "edit_usage": {"en": "Usage: /edit N <new time and/or text>, e.g. /edit 3 tomorrow at 10 or "
                         "/edit 3 call grandma",
                   "ru": "Использование: /edit N <новое время и/или текст>, например /edit 3 завтра "
                         "в 10 или /edit 3 позвонить бабушке"},
    "edit_prompt": {"en": "✏️ Send the new time and/or text for #{id} (e.g. “tomorrow at 10” or "
                          "“call grandma”).",
                    "ru": "✏️ Пришлите новое время и/или текст для #{id} (например «завтра в 10» "
                          "или «позвонить бабушке»)."},
    "edited": {"en": "✏️ #{id} changed: {text}\n🗓 {when}", "ru": "✏️ #{id} изменено: {text}\n🗓 {when}"},
    "ans_edit_undone": {"en": "Edit undone: #{id} is back as it was", "ru": "Изменение отменено: #{id} снова как было"},
    "ans_edit_already_undone": {"en": "Already undone", "ru": "Уже отменено"},
    "ans_edit_nothing": {"en": "Nothing to undo any more", "ru": "Отменять уже нечего"},
    "ans_edit_gone": {"en": "Not undone: #{id} was delivered or cancelled since",
                      "ru": "Не отменено: #{id} уже отправлено или отменено"},
    "ans_edit_newer": {"en": "Not undone: #{id} was edited again since",
                       "ru": "Не отменено: #{id} с тех пор изменено ещё раз"},
    "ans_edit_changed": {"en": "Not undone: #{id} has changed since (delivered, paused or resumed)",
                         "ru": "Не отменено: #{id} с тех пор изменилось (отправлено, на паузе или возобновлено)"},
    "ans_edit_past": {"en": "Not undone: the earlier time of #{id} has passed",
                      "ru": "Не отменено: прежнее время #{id} уже прошло"},
    "label_edit_undone": {"en": "↩ Edit undone: #{id} {text}\n🗓 {when}",
                          "ru": "↩ Изменение отменено: #{id} {text}\n🗓 {when}"},
    "pause_usage": {"en": "Usage: /pause N or /resume N (a recurring reminder from /list)",
                    "ru": "Использование: /pause N или /resume N (повторяющееся напоминание из /list)"},
    "only_recurring": {"en": "Only a recurring reminder can be paused; #{id} is one-off (/cancel it instead).",
                       "ru": "Приостановить можно только повторяющееся; #{id} — разовое (его можно /cancel)."},
    "paused": {"en": "⏸ Paused #{id}: {text}. /resume {id} to continue.",
               "ru": "⏸ Приостановлено #{id}: {text}. /resume {id} — продолжить."},
    "resumed": {"en": "▶ Resumed #{id}: {text}\n🗓 {when}", "ru": "▶ Возобновлено #{id}: {text}\n🗓 {when}"},
    "not_paused": {"en": "#{id} is not paused.", "ru": "#{id} не на паузе."},
    # -- export, status --------------------------------------------------------------------------
    "export_caption": {"en": "Your data: {n} reminders", "ru": "Ваши данные: напоминаний — {n}"},
    "admins_only": {"en": "/status is for admins.", "ru": "/status — только для администраторов."},
    "status": {
        "en": "Version: {release} (bot {version})\nUptime: {uptime}\nPending reminders: {pending} "
              "({overdue} overdue)\nDatabase size: {db_size}\nDisk: {disk}\nLast backup: {backup}\n"
              "Maintenance: {maintenance}\nSent since start: {sent}",
        "ru": "Версия: {release} (бот {version})\nРаботает: {uptime}\nОжидают: {pending} "
              "(просрочено {overdue})\nРазмер базы: {db_size}\nДиск: {disk}\nПоследний бэкап: {backup}\n"
              "Обслуживание: {maintenance}\nОтправлено с запуска: {sent}"},
    "disk_free": {"en": "{free} free of {total}", "ru": "свободно {free} из {total}"},
    "unknown": {"en": "unknown", "ru": "неизвестно"},
    "on": {"en": "on", "ru": "включено"},
    "off": {"en": "off", "ru": "выключено"},
    "backup_none": {"en": "none recorded", "ru": "нет записей"},
    "backup_line": {"en": "{at} UTC, {size}, {age} ago, {state}", "ru": "{at} UTC, {size}, {age} назад, {state}"},
    "backup_ok": {"en": "ok", "ru": "успешно"},
    "backup_failed": {"en": "FAILED", "ru": "ОШИБКА"},
    "backup_local": {"en": ", local only", "ru": ", только локально"},
    "backup_last_good": {"en": " (last good {age} ago)", "ru": " (последний удачный {age} назад)"},
    "drill_stale": {"en": "; DRILL STALE: last good restore drill {age} ago",
                    "ru": "; ПРОВЕРКА УСТАРЕЛА: последняя удачная проверка восстановления {age} назад"},
    "drill_none": {"en": "; DRILL STALE: no good restore drill recorded",
                   "ru": "; ПРОВЕРКА УСТАРЕЛА: удачных проверок восстановления нет"},
    # -- buttons -------------------------------------------------------------------------------
    "btn_done": {"en": "✅ Done", "ru": "✅ Готово"},
    "btn_snooze_min": {"en": "💤 {n} min", "ru": "💤 {n} мин"},
    "btn_snooze_hour": {"en": "💤 1 h", "ru": "💤 1 ч"},
    "btn_tomorrow": {"en": "🌅 Tomorrow 9:00", "ru": "🌅 Завтра в 9:00"},
    "btn_cancel": {"en": "✖ #{id}", "ru": "✖ #{id}"},
    "btn_edit": {"en": "✏️ #{id}", "ru": "✏️ #{id}"},
    "btn_pause": {"en": "⏸ #{id}", "ru": "⏸ #{id}"},
    "btn_resume": {"en": "▶ #{id}", "ru": "▶ #{id}"},
    "ans_unknown_button": {"en": "Unknown button", "ru": "Неизвестная кнопка"},
    "ans_cancelled": {"en": "Cancelled #{id}", "ru": "Отменено #{id}"},
    "ans_already_cancelled": {"en": "Already cancelled or done", "ru": "Уже отменено или выполнено"},
    "ans_not_yours": {"en": "This button is not yours.", "ru": "Это не ваша кнопка."},
    "ans_already": {"en": "Already handled ✔", "ru": "Уже сделано ✔"},
    "ans_gone": {"en": "This reminder no longer exists.", "ru": "Этого напоминания больше нет."},
    "ans_paused": {"en": "Paused #{id}", "ru": "#{id} на паузе"},
    "ans_resumed": {"en": "Resumed #{id}", "ru": "#{id} возобновлено"},
    "label_done": {"en": "✅ Done", "ru": "✅ Готово"},
    "label_snoozed": {"en": "💤 Snoozed until {time}", "ru": "💤 Отложено до {time}"},
    "label_moved": {"en": "🌅 Moved to {day} 09:00", "ru": "🌅 Перенесено на {day} 09:00"},
    # -- delivery ------------------------------------------------------------------------------
    "late_note": {"en": "(late by {delay}: it was due {due}; the bot was unavailable)",
                  "ru": "(с опозданием на {delay}: должно было прийти {due}; бот был недоступен)"},
    "quiet_note": {"en": "(🌙 held during your quiet hours: it was due {due})",
                   "ru": "(🌙 задержано на время тихих часов: должно было прийти {due})"},
    "repeat_note": {"en": "(possibly a repeat: the bot restarted while sending this)",
                    "ru": "(возможно, повтор: бот перезапускался во время отправки)"},
    "delay_d": {"en": "{n} d", "ru": "{n} д"},
    "delay_s": {"en": "{n} s", "ru": "{n} с"},
    "delay_h": {"en": "{n} h", "ru": "{n} ч"},
    "delay_m": {"en": "{n} min", "ru": "{n} мин"},
    # -- recurrence ----------------------------------------------------------------------------
    "rule_daily": {"en": "every day at {time}", "ru": "каждый день в {time}"},
    "rule_weekdays": {"en": "every weekday at {time}", "ru": "по будням в {time}"},
    "rule_weekly": {"en": "every {weekday} at {time}", "ru": "каждый {weekday} в {time}"},
    "rule_monthly": {"en": "every month on day {day} at {time}", "ru": "каждый месяц {day}-го в {time}"},
    "weekday_names": {"en": "Mon Tue Wed Thu Fri Sat Sun", "ru": "пн вт ср чт пт сб вс"},
    "month_names": {"en": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
                    "ru": "января февраля марта апреля мая июня июля августа сентября октября ноября декабря"},
    "rule_weekends": {"en": "every weekend at {time}", "ru": "по выходным в {time}"},
    "rule_weekly_days": {"en": "every {weekdays} at {time}", "ru": "по {weekdays} в {time}"},
    "rule_every_n_days": {"en": "every {n} {unit} at {time}", "ru": "каждые {n} {unit} в {time}"},
    "rule_every_n_weeks": {"en": "every {n} {unit} on {weekdays} at {time}",
                           "ru": "каждые {n} {unit}: {weekdays} в {time}"},
    "rule_every_n_months": {"en": "every {n} {unit} on day {day} at {time}",
                            "ru": "каждые {n} {unit} {day}-го в {time}"},
    "rule_yearly": {"en": "every year on {date} at {time}", "ru": "каждый год {date} в {time}"},
    "rule_every_n_years": {"en": "every {n} {unit} on {date} at {time}", "ru": "каждые {n} {unit} {date} в {time}"},
    "rule_hourly_1": {"en": "every hour (from {time})", "ru": "каждый час (с {time})"},
    "rule_hourly": {"en": "every {n} {unit} (from {time})", "ru": "каждые {n} {unit} (с {time})"},
    "rule_unknown": {"en": "a rule this version cannot read", "ru": "правило, которое эта версия не понимает"},
    # unit words for "every N …": one|other (en), one|few|many (ru)
    "unit_hours": {"en": "hour|hours", "ru": "час|часа|часов"},
    "unit_days": {"en": "day|days", "ru": "день|дня|дней"},
    "unit_weeks": {"en": "week|weeks", "ru": "неделю|недели|недель"},
    "unit_months": {"en": "month|months", "ru": "месяц|месяца|месяцев"},
    "unit_years": {"en": "year|years", "ru": "год|года|лет"},
    # -- errors, strangers, maintenance, admins -------------------------------------------------
    "unavailable": {"en": "⚠️ Temporarily unavailable (database), please try again in a minute.",
                    "ru": "⚠️ Временно недоступно (база данных), попробуйте через минуту."},
    "refusal": {"en": "Sorry, this is a private bot.", "ru": "Извините, это частный бот."},
    "maintenance": {"en": "🛠 The bot is under maintenance. Your reminders are safe: the ones due "
                          "meanwhile arrive when it is back.",
                    "ru": "🛠 Бот на техническом обслуживании. Ваши напоминания в сохранности: "
                          "те, что наступят за это время, придут, когда он вернётся."},
    "admin_alert": {"en": "⚠️ bot error ({kind}): {error}", "ru": "⚠️ ошибка бота ({kind}): {error}"},
    "admin_delivery_failed": {"en": "⚠️ reminder #{id} could not be delivered: {error}",
                              "ru": "⚠️ напоминание #{id} не доставлено: {error}"},
    # -- the command menu (setMyCommands) ---------------------------------------------------------
    "cmd_start": {"en": "Start", "ru": "Начало"},
    "cmd_help": {"en": "Examples and commands", "ru": "Примеры и команды"},
    "cmd_remind": {"en": "New reminder: /remind <when> <text>", "ru": "Новое напоминание: /remind <когда> <текст>"},
    "cmd_list": {"en": "Upcoming reminders", "ru": "Предстоящие напоминания"},
    "cmd_cancel": {"en": "Cancel: /cancel N", "ru": "Отменить: /cancel N"},
    "cmd_edit": {"en": "Change: /edit N <time and/or text>", "ru": "Изменить: /edit N <время и/или текст>"},
    "cmd_pause": {"en": "Pause a recurring reminder: /pause N", "ru": "Пауза: /pause N"},
    "cmd_resume": {"en": "Resume: /resume N", "ru": "Возобновить: /resume N"},
    "cmd_quiet": {"en": "Quiet hours: /quiet 22:00-08:00", "ru": "Тихие часы: /quiet 22:00-08:00"},
    "cmd_snooze": {"en": "Snooze minutes: /snooze 15", "ru": "Отложить на: /snooze 15"},
    "cmd_tz": {"en": "Time zone: /tz Europe/Berlin", "ru": "Часовой пояс: /tz Europe/Moscow"},
    "cmd_lang": {"en": "Language: /lang en|ru|auto", "ru": "Язык: /lang en|ru|auto"},
    "cmd_export": {"en": "Your data as JSON", "ru": "Ваши данные (JSON)"},
}

COMMANDS = ("start", "help", "remind", "list", "cancel", "edit", "pause", "resume", "quiet",
            "snooze", "tz", "lang", "export")


def t(lang: str, key: str, **fields) -> str:
    entry = MESSAGES[key]
    text = entry.get(lang) or entry[DEFAULT_LANG]
    return text.format(**fields) if fields else text


def language(telegram_code: str | None, override: str | None = None) -> str:
    """The user's language: their /lang choice, else Telegram's language_code."""
    if override in LANGS:
        return override
    return "ru" if (telegram_code or "").lower().startswith("ru") else DEFAULT_LANG


def weekday_name(lang: str, weekday: int) -> str:
    return t(lang, "weekday_names").split()[weekday]


def fmt_delay(seconds: float, lang: str = DEFAULT_LANG) -> str:
    s = max(0, int(seconds))
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    parts = [t(lang, "delay_d", n=d)] if d else []
    if h:
        parts.append(t(lang, "delay_h", n=h))
    if m or not parts:
        parts.append(t(lang, "delay_m", n=m))
    return " ".join(parts)
