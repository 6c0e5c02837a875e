"""botstack-backup: scheduled, encrypted, offsite PostgreSQL backups that are proven to restore."""

__version__ = "1.0.0"
