"""botstack's bot: a personal reminders assistant on python-telegram-bot v22 and PostgreSQL.

Run with ``python -m bot`` (long polling) or ``python -m bot healthcheck``. See docs/bot.md.
"""
__version__ = "1.0.0"
