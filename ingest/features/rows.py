"""A record as one row of a table that reads at 80 columns: its local time in one short form,
the other party, and the start of what was said. Marks stand in for what would repeat on
every row ("zone assumed"), and `footnotes` says once what each mark means."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable
from zoneinfo import ZoneInfo

from ingest.features.timeline import one_line

ZONE_ASSUMED = "*"
TIME_UNKNOWN = "?"
ABOUT = "~"
SHORT_DIRECTIONS = {"incoming": "in", "outgoing": "out"}


@dataclass(frozen=True)
class Row:
    id: str
    when: str
    kind: str
    party: str
    what: str


def row(record: dict, zone: ZoneInfo, names: Callable[[list[str]], list[str]] | None = None) -> Row:
    """`names` gives the party names of identifiers (parties.PartyBook.names), shown before numbers."""
    direction = record.get("direction")
    kind = record["kind"] + (f" {SHORT_DIRECTIONS.get(direction, direction)}" if direction else "")
    return Row(record["id"], short_when(record, zone), kind, other_party(record, names), one_line(record, 10_000))


def short_when(record: dict, zone: ZoneInfo) -> str:
    """`2024-03-01 21:41` in the case's zone; `2024-10-02 ?` for a day without a time,
    `2024-10-02 ~21:00` for "about 9pm", a trailing `*` where the zone was assumed."""
    meta = record.get("metadata") or {}
    if meta.get("date_only") and meta.get("occurred_on"):
        return f"{meta['occurred_on']} {TIME_UNKNOWN}"
    if not record.get("occurred_at"):
        return "time unknown"
    moment = datetime.fromisoformat(record["occurred_at"]).astimezone(zone)
    clock = f"{ABOUT if meta.get('at_approximate') else ''}{moment:%H:%M}"
    return f"{moment:%Y-%m-%d} {clock}" + (ZONE_ASSUMED if record.get("timezone_assumed") else "")


def full_when(record: dict) -> str:
    """The time in full with what it needs said beside it, in words (for the wide table)."""
    meta = record.get("metadata") or {}
    if meta.get("date_only") and meta.get("occurred_on"):
        return f"{meta['occurred_on']} (time not known)"
    return ((record["occurred_at"] or "time unknown") + (" (about)" if meta.get("at_approximate") else "")
            + (" (zone assumed)" if record.get("timezone_assumed") else ""))


def other_party(record: dict, names: Callable[[list[str]], list[str]] | None = None) -> str:
    """Who else the record involves: the recipient of what was sent, else the sender; by the
    party's name where one is known, else as the number or address."""
    people = record["to"] if record.get("direction") == "outgoing" else (record["from"] or record["to"])
    people = [person for person in people if person != "me"] or people
    shown = (names(people) if names else []) or people
    if not shown:
        return ""
    return shown[0] + (f" +{len(shown) - 1}" if len(shown) > 1 else "")


def footnotes(rows: list[Row], zone: ZoneInfo) -> list[str]:
    """What each mark used in these rows means, once."""
    said = []
    if any(r.when.endswith(ZONE_ASSUMED) for r in rows):
        said.append(f"{ZONE_ASSUMED} zone assumed: no zone was given, so the time was read as {zone.key}.")
    if any(r.when.endswith(TIME_UNKNOWN) for r in rows):
        said.append(f"{TIME_UNKNOWN} the time of day is not known.")
    if any(ABOUT in r.when for r in rows):
        said.append(f"{ABOUT} about: the time as it was given, not exact.")
    return said
