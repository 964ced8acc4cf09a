"""Times people type (`note --at`, `--since`, `--until`), read the way the case's owner writes them:
in the case's time zone and, for a numeric date such as 03/04/2024, its region's day/month order."""

from __future__ import annotations

from datetime import datetime

from ingest.case import Case
from ingest.kit.dayorder import month_first
from ingest.model.times import TypedTime, parse_user_time


def typed_time(case: Case, text: str) -> TypedTime:
    return parse_user_time(text, case.config.timezone, month_first=month_first(case.config.region))


def how_read(case: Case, record: dict) -> str | None:
    """For a note whose typed date could be read day/month or month/day, how it was read, e.g.
    "03/04/2024 10:00 was read as 3 April 2024 (day/month, as dates are written in GB)." """
    order = record["metadata"].get("at_day_order")
    if not order:
        return None
    day = datetime.fromisoformat(record["occurred_at"])
    return (f"{record['occurred_at_raw'].strip()} was read as {day.day} {day:%B %Y} ({order}, as dates are "
            f"written in {case.config.region}).")


def described(record: dict) -> str:
    """When a record happened, as much as is known: "on 2024-10-02 (time not known)", "at about ..."."""
    meta = record["metadata"]
    if meta.get("date_only"):
        return f"on {meta['occurred_on']} (time not known)"
    return f"at {meta['at_approximate'] + ' ' if meta.get('at_approximate') else ''}{record['occurred_at']}"
