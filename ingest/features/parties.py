"""People and the pattern: `ingest party` and `ingest mark`.

    add_party(case, name, phones=[], emails=[], aliases=[], handles=[], me=False, note=None) -> dict
    link(case, name, phones=[], emails=[], aliases=[], handles=[]) -> dict
    list_parties(case) -> list[dict]          show(case, name) -> dict          suggest(case) -> list[dict]
    mark(case, record_id, as_, reference=None) -> dict                        unmark(case, record_id, as_) -> dict

A party is a person with the identifiers they use: phone numbers (E.164 with the
case region), email addresses, aliases (a display name as a WhatsApp export or a
phone's contacts write it) and handles. The party marked `me` is the case owner.

Nothing here changes a record. Which parties a record involves is worked out
each time it is read, from its `from` and `to` (`PartyBook.annotate`), so a
link added today applies to everything already held, with no reparse. With the
owner known, a message or call whose direction its source left open gets it
from the owner's identifiers (theirs sending is outgoing). A mark
(request-to-stop, threat, reported-to-police) is an overlay shown on the
record; unmarking ends it. Every change is a custody line first, then the index.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ingest.case import Case
from ingest.kit.phones import e164
from ingest.model.errors import UsageError
from ingest.model.times import iso_utc, utc_now

MARKS = ("request-to-stop", "threat", "reported-to-police")
KINDS = ("phones", "emails", "aliases", "handles")
OWNER_IN_RECORDS = "me"       # how phone backups name the owner in from/to
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_NUMBER_IN_NAME = re.compile(r"\+?\d[\d ()\u00a0\u202a\u202c.-]{6,}\d")
_WHITESPACE = re.compile(r"\s+")


def fold(text: str) -> str:
    """Text as matched: ASCII letters lowered, exactly as SQLite's lower() does."""
    return text.translate(_ASCII_LOWER)


# --- changing parties -------------------------------------------------------------------
def add_party(case: Case, name: str, phones=(), emails=(), aliases=(), handles=(), me: bool = False,
              note: str | None = None) -> dict:
    """Add a person (or, with `me`, the case owner) with the identifiers they use."""
    name = _clean_name(name)
    existing = case.index.party(name)
    if existing is not None:
        raise UsageError(f"{existing['name']!r} is already a party.",
                         hint=f"Add identifiers to it with `ingest party link {existing['name']!r} --phone ...`.")
    if me and any(row["me"] for row in case.index.parties()):
        owner = next(row["name"] for row in case.index.parties() if row["me"])
        raise UsageError(f"The case owner is already {owner!r}.",
                         hint=f"Add your other numbers and addresses with `ingest party link {owner!r}`.")
    identifiers = _identifiers(case, name, phones, emails, aliases, handles)
    now = iso_utc(utc_now())
    note = (note or "").strip() or None
    detail = {"name": name, "me": bool(me), "note": note, **_shown(identifiers)}

    def work(index):
        index.add_party(name, me, note, now)
        index.add_identifiers(name, identifiers, now)

    case.commit([case.custody_entry("party_add", {}, detail)], work)
    return _party(case, name)


def link(case: Case, name: str, phones=(), emails=(), aliases=(), handles=()) -> dict:
    """Add identifiers to a party; records already held involve them from now on."""
    party = require_party(case, name)
    identifiers = _identifiers(case, party, phones, emails, aliases, handles)
    if not identifiers:
        raise UsageError("Nothing to link.", hint="Give at least one --phone, --email, --alias or --handle.")
    now = iso_utc(utc_now())
    case.commit([case.custody_entry("party_link", {}, {"name": party, **_shown(identifiers)})],
                lambda index: index.add_identifiers(party, identifiers, now))
    return _party(case, party)


def list_parties(case: Case) -> list[dict]:
    by_party: dict[str, dict] = {row["name"]: _party_dict(row) for row in case.index.parties()}
    for row in case.index.identifiers():
        by_party[row["party"]][_KIND_OF[row["type"]]].append(row["shown"])
    return list(by_party.values())


def require_party(case: Case, name: str) -> str:
    """The party's name as added, or a usage error naming the parties there are."""
    row = case.index.party((name or "").strip())
    if row is not None:
        return row["name"]
    known = [row["name"] for row in case.index.parties()]
    raise UsageError(f"There is no party called {name!r}.",
                     hint=f"Known parties: {', '.join(known)}." if known else
                     "Add one with `ingest party add NAME --phone ... --email ...`.")


def _party(case: Case, name: str) -> dict:
    return next(party for party in list_parties(case) if party["name"] == name)


def _party_dict(row) -> dict:
    return {"name": row["name"], "me": bool(row["me"]), "note": row["note"], "added_at": row["added_at"],
            "phones": [], "emails": [], "aliases": [], "handles": []}


_KIND_OF = {"phone": "phones", "email": "emails", "alias": "aliases", "handle": "handles"}


def _clean_name(name: str) -> str:
    name = _WHITESPACE.sub(" ", name or "").strip()
    if not name:
        raise UsageError("A party needs a name.", hint='e.g. ingest party add "Mark Ellis" --phone 07700900123')
    return name


def _identifiers(case: Case, party: str, phones, emails, aliases, handles) -> list[tuple[str, str, str]]:
    """(type, value as matched, as typed) of each new identifier; one held by another party is refused."""
    found: dict[str, tuple[str, str, str]] = {}
    for raw in phones:
        number = e164(raw, case.config.region)
        if number is None:
            raise UsageError(f"{raw!r} is not a phone number ingest can read (region {case.config.region}).",
                             hint="Write it as the phone shows it, e.g. 07700 900123 or +44 7700 900123.")
        found.setdefault(number, ("phone", number, number))
    for raw in emails:
        address = raw.strip().lower()
        if "@" not in address or " " in address:
            raise UsageError(f"{raw!r} is not an email address.", hint="Write it like name@example.com.")
        found.setdefault(address, ("email", address, address))
    for type_, values in (("alias", aliases), ("handle", handles)):
        for raw in values:
            shown = _WHITESPACE.sub(" ", raw).strip()
            if not shown:
                raise UsageError(f"An empty {type_} cannot be linked.", hint=f"Write the {type_} as it appears.")
            if fold(shown) == OWNER_IN_RECORDS:
                raise UsageError(f"{shown!r} is how phone backups name the case owner.",
                                 hint="Add the owner with `ingest party add NAME --me`.")
            found.setdefault(fold(shown), (type_, fold(shown), shown))
    held = {row["value"]: row["party"] for row in case.index.identifiers()}
    new = []
    for value, identifier in found.items():
        owner = held.get(value)
        if owner is None:
            new.append(identifier)
        elif owner.lower() != party.lower():
            raise UsageError(f"{identifier[2]!r} already belongs to {owner!r}.",
                             hint="One number, address or name can belong to one party only.")
    return new


def _shown(identifiers: list[tuple[str, str, str]]) -> dict:
    detail: dict[str, list[str]] = {}
    for type_, _value, shown in identifiers:
        detail.setdefault(_KIND_OF[type_], []).append(shown)
    return detail


# --- marks -------------------------------------------------------------------------------
def mark(case: Case, record_id: str, as_: str, reference: str | None = None) -> dict:
    """Mark a record (request-to-stop, threat, reported-to-police): an overlay, the record unchanged."""
    record = _record(case, record_id)
    as_ = _mark_name(as_)
    if any(row["mark"] == as_ for row in case.index.marks(record["id"])):
        raise UsageError(f"Record {record['id'][:12]} is already marked {as_}.",
                         hint=f"To take the mark off, use `ingest unmark {record['id'][:12]} --as {as_}`.")
    reference = (reference or "").strip() or None
    now = iso_utc(utc_now())
    case.commit([case.custody_entry("mark", {"records": [record["id"]]},
                                    {"record": record["id"], "mark": as_, "reference": reference})],
                lambda index: index.add_mark(record["id"], as_, reference, now))
    return {"record": record["id"], "mark": as_, "reference": reference, "marked_at": now}


def unmark(case: Case, record_id: str, as_: str) -> dict:
    """End a mark. The mark and its ending both stay in the custody log."""
    record = _record(case, record_id)
    as_ = _mark_name(as_)
    if not any(row["mark"] == as_ for row in case.index.marks(record["id"])):
        raise UsageError(f"Record {record['id'][:12]} is not marked {as_}.",
                         hint=f"See its marks with `ingest show {record['id'][:12]}`.")
    now = iso_utc(utc_now())
    case.commit([case.custody_entry("unmark", {"records": [record["id"]]}, {"record": record["id"], "mark": as_})],
                lambda index: index.remove_mark(record["id"], as_, now))
    return {"record": record["id"], "mark": as_, "unmarked_at": now}


def _record(case: Case, record_id: str) -> dict:
    record = case.index.record((record_id or "").strip()) if (record_id or "").strip() else None
    if record is None:
        raise UsageError(f"No single record has an id starting {record_id!r}.", hint="See `ingest list` for ids.")
    return record


def _mark_name(as_: str) -> str:
    name = (as_ or "").strip().lower()
    if name not in MARKS:
        raise UsageError(f"{as_!r} is not a mark ingest knows.", hint=f"Use one of: {', '.join(MARKS)}.")
    return name


# --- reading: which parties a record involves --------------------------------------------
@dataclass
class PartyBook:
    """Every identifier of every party, and the marks in force: small, read once per command."""

    parties_of: dict[str, list[str]] = field(default_factory=dict)    # folded identifier -> party names
    owner: str | None = None
    marks_of: dict[str, list[dict]] = field(default_factory=dict)

    @classmethod
    def load(cls, case: Case) -> "PartyBook":
        book = cls()
        for row in case.index.parties():
            if row["me"]:
                book.owner = row["name"]
                book.parties_of[OWNER_IN_RECORDS] = [row["name"]]
        for row in case.index.identifiers():
            book.parties_of.setdefault(row["value"], []).append(row["party"])
        for row in case.index.marks():
            book.marks_of.setdefault(row["record"], []).append(
                {"as": row["mark"], "reference": row["reference"], "marked_at": row["marked_at"]})
        return book

    def names(self, values) -> list[str]:
        found: dict[str, None] = {}
        for value in values:
            for name in self.parties_of.get(fold(value), ()):
                found[name] = None
        return list(found)

    def annotate(self, record: dict) -> dict:
        """Add `parties` (and `marks`), and the direction the owner's identifiers give, to a record as read."""
        record["parties"] = self.names(record["from"] + record["to"])
        if record["id"] in self.marks_of:
            record["marks"] = self.marks_of[record["id"]]
        if self.owner and record.get("direction") is None and record["kind"] in CONTACT_KINDS:
            sender, receivers = self.names(record["from"]), self.names(record["to"])
            if self.owner in sender:
                record["direction"], record["direction_derived"] = "outgoing", True
            elif record["from"] and (self.owner in receivers or record["kind"] == "whatsapp"):
                # a chat export is the owner's own chat: what someone else wrote in it came in
                record["direction"], record["direction_derived"] = "incoming", True
        return record


CONTACT_KINDS = ("sms", "mms", "call", "whatsapp", "email")


def values_of(case: Case, names) -> list[str]:
    """The folded identifiers of the named parties (a usage error for an unknown name)."""
    wanted = {require_party(case, name).lower() for name in names}
    values = [row["value"] for row in case.index.identifiers() if row["party"].lower() in wanted]
    if any(row["me"] and row["name"].lower() in wanted for row in case.index.parties()):
        values.append(OWNER_IN_RECORDS)
    return values


# --- the pattern, per party -----------------------------------------------------------------
def show(case: Case, name: str, *, table: str | None = None) -> dict:
    """The party's identifiers and the pattern of their contacts (records *from* them): counts by
    kind and week, first and last, the longest gap, hour x weekday, and what came after each
    request to stop. `table` limits it to the records of a report's or export's selection.
    Streams the contacts once; memory is bounded by the weeks spanned, not the records."""
    party = _party(case, require_party(case, name))
    values = values_of(case, [party["name"]])
    zone = ZoneInfo(case.config.timezone)
    book = PartyBook.load(case)
    own_marks = [row for row in case.index.marks()
                 if party["name"] in book.names(json.loads(row["from_json"]) + json.loads(row["to_json"]))]
    requests = [row for row in own_marks if row["mark"] == "request-to-stop"]
    after = [0] * len(requests)
    by_kind: dict[str, int] = {}
    by_week: dict[date, int] = {}
    by_week_kind: dict[date, dict[str, int]] = {}
    grid = [[0] * 24 for _ in WEEKDAYS]
    contacts = 0
    first = last = previous = None
    gap = None
    for _id, kind, sort_time, timed in case.index.contacts(values, table):
        contacts += 1
        by_kind[kind] = by_kind.get(kind, 0) + 1
        if not timed:
            continue
        for number, request in enumerate(requests):
            if sort_time > request["sort_time"]:
                after[number] += 1
        moment = datetime.fromisoformat(sort_time.replace("Z", "+00:00")).astimezone(zone)
        week = moment.date() - timedelta(days=moment.weekday())
        by_week[week] = by_week.get(week, 0) + 1
        week_kinds = by_week_kind.setdefault(week, {})
        week_kinds[kind] = week_kinds.get(kind, 0) + 1
        grid[moment.weekday()][moment.hour] += 1
        if previous is not None and (gap is None or moment - previous > gap[0]):
            gap = (moment - previous, previous, moment)
        first = first or moment
        last = previous = moment
    weeks = _all_weeks(by_week)
    return {
        "name": party["name"], "me": party["me"], "note": party["note"],
        "identifiers": {kind: party[kind] for kind in KINDS}, "timezone": case.config.timezone,
        "contacts": contacts, "first": first.isoformat() if first else None, "last": last.isoformat() if last else None,
        "by_kind": dict(sorted(by_kind.items(), key=lambda item: (-item[1], item[0]))),
        "by_week": {week.isoformat(): by_week.get(week, 0) for week in weeks},
        "by_week_kind": {week.isoformat(): by_week_kind[week] for week in weeks if week in by_week_kind},
        "trend_per_week": _slope([by_week.get(week, 0) for week in weeks]),
        "requests_to_stop": [{"record": row["record"], "at": row["occurred_at"], "contacts_after": count}
                             for row, count in zip(requests, after)],
        "after_request_to_stop": after[0] if after else None,
        "threats": [{"record": row["record"], "at": row["occurred_at"]} for row in own_marks if row["mark"] == "threat"],
        "reported_to_police": [{"record": row["record"], "at": row["occurred_at"], "reference": row["reference"]}
                               for row in own_marks if row["mark"] == "reported-to-police"],
        "longest_gap": None if gap is None else {"days": round(gap[0].total_seconds() / 86400, 2),
                                                 "from": gap[1].isoformat(), "to": gap[2].isoformat()},
        "weekdays": list(WEEKDAYS),
        "hour_by_weekday": grid,
    }


def _all_weeks(by_week: dict[date, int]) -> list[date]:
    """Every week from the first contact's to the last's, quiet weeks included."""
    if not by_week:
        return []
    first, last = min(by_week), max(by_week)
    return [first + timedelta(weeks=number) for number in range((last - first).days // 7 + 1)]


def _slope(counts: list[int]) -> float | None:
    """Least-squares change in contacts per week, per week: the escalation, as one number."""
    n = len(counts)
    if n < 2:
        return None
    mean_x, mean_y = (n - 1) / 2, sum(counts) / n
    spread = sum((x - mean_x) ** 2 for x in range(n))
    return round(sum((x - mean_x) * (y - mean_y) for x, y in enumerate(counts)) / spread, 3)


# --- suggestions --------------------------------------------------------------------------
def suggest(case: Case) -> list[dict]:
    """Links the case's own records suggest; none is made. Each carries the command accepting it."""
    # a party's own name counts as held: "link Mark Ellis --alias 'Mark Ellis'" is no news
    held = {fold(row["name"]): row["name"] for row in case.index.parties()}
    held.update((row["value"], row["party"]) for row in case.index.identifiers())
    owner_names = {row["value"] for row in case.index.identifiers() if row["me"]}
    suggestions: list[dict] = []

    names_of: dict[str, dict[str, int]] = {}
    for row in case.index.names_by_number():
        names_of.setdefault(row["number"], {})[row["name"]] = row["records"]
    for row in case.index.chat_senders():
        number = _number_in(case, row["filename"]) or _number_in(case, row["source_key"])
        # the owner writes in every chat of theirs: only the other senders go with the chat's number
        if number and e164(row["sender"], case.config.region) is None and fold(row["sender"]) not in owner_names:
            names = names_of.setdefault(number, {})
            names[row["sender"]] = names.get(row["sender"], 0) + row["records"]
            suggestions.append(_suggestion(
                held, f"The WhatsApp chat {row['filename'] or row['source_key']!r} carries the number {number}; "
                      f"its sender {row['sender']!r} wrote {row['records']} message(s).",
                phones=[number], aliases=[row["sender"]], records=row["records"]))
    for number, names in names_of.items():
        if len(names) > 1:
            listed = ", ".join(f"{name!r} ({count})" for name, count in sorted(names.items()))
            suggestions.append(_suggestion(held, f"The number {number} appears under {len(names)} names: {listed}.",
                                           phones=[number], aliases=sorted(names), records=sum(names.values())))
    for row in case.index.email_names():
        owner = held.get(fold(_WHITESPACE.sub(" ", row["name"]).strip()))
        if owner is not None and held.get(row["address"]) is None:
            suggestions.append(_suggestion(
                held, f"The email address {row['address']} writes its name as {row['name']!r}, an alias of {owner!r}.",
                emails=[row["address"]], aliases=[row["name"]], records=row["records"]))
    return [item for item in suggestions if item is not None]


def _number_in(case: Case, text: str | None) -> str | None:
    for found in _NUMBER_IN_NAME.findall(text or ""):
        number = e164(found, case.config.region)
        if number:
            return number
    return None


def _suggestion(held: dict[str, str], reason: str, *, phones=(), emails=(), aliases=(), records: int) -> dict | None:
    """A suggestion, unless everything in it already belongs to one party."""
    values = [(type_, shown, fold(shown) if type_ == "alias" else shown)
              for type_, items in (("phone", phones), ("email", emails), ("alias", aliases)) for shown in items]
    owners = sorted({held[value] for _type, _shown, value in values if value in held})
    new = [(type_, shown) for type_, shown, value in values if value not in held]
    if not new or len(owners) > 1:
        return None     # nothing to add, or it joins two parties the user keeps apart
    party = owners[0] if owners else None
    options = " ".join(f"--{type_} {_quote(shown)}" for type_, shown in new)
    command = (f"ingest party link {_quote(party)} {options}" if party
               else f"ingest party add NAME {' '.join(f'--{t} {_quote(s)}' for t, s, _v in values)}")
    return {"reason": reason, "party": party, "phones": list(phones), "emails": list(emails),
            "aliases": list(aliases), "records": records, "command": command}


def _quote(text: str) -> str:
    return text if re.fullmatch(r"[\w@.+-]+", text) else "'" + text.replace("'", "'\\''") + "'"
