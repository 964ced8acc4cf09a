"""Phone backups: SMS/MMS and call logs (XML backups, CSV call logs, phone databases)."""
