"""What phone backups have in common: who the other party is, epoch times, event identity.

Parties: a number with an E.164 form is given in that form (the raw text is kept in
the record's metadata by the parser); a short code or an alphanumeric sender
("7535", "OTP Bank") is given as written; a private, withheld or unknown caller
(`-1`, `-2`, `-3`, an empty number, "Unknown", "Private number") is "withheld",
"unknown" or "payphone", never a made-up number.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from datetime import datetime, timezone

from ingest.kit.dating import date_by_file_time
from ingest.model.records import ParseWarning, Record, StoredOriginal

ME = "me"
WITHHELD = "withheld"
UNKNOWN = "unknown"
PAYPHONE = "payphone"
# Written by Android and backup apps where the network gave no number.
HIDDEN_NUMBERS = {"", "-1", "-2", "-3", "-4", "null", "private", "private number", "withheld", "unknown",
                  "(unknown)", "no caller id", "restricted", "anonymous", "no number", "payphone"}
# Android CallLog.Calls presentation codes.
PRESENTATION = {"1": "allowed", "2": "restricted", "3": "unknown", "4": "payphone"}
_IDENTITY_HASH = hashlib.blake2b(digest_size=16)
SECONDS_BEFORE = 100_000_000_000   # an epoch value below this is seconds (ms would be before 1973)
NO_TIME = (None, None, None)
UTC = timezone.utc


def party(raw: str | None, phone, presentation: str | None = None) -> str:
    """The other party as a record names it. `phone` is ctx.phone (raw -> E.164 or None);
    `presentation` is Android's code (2 restricted, 3 unknown, 4 payphone)."""
    text = (raw or "").strip()
    lowered = text.lower()
    hidden = PRESENTATION.get(presentation) if presentation in ("2", "3", "4") else None
    if hidden is None and lowered not in HIDDEN_NUMBERS:
        return phone(text) or text
    if hidden == "payphone" or (hidden is None and lowered in ("payphone", "-3")):
        return PAYPHONE
    if hidden == "unknown" or (hidden is None and lowered in ("", "unknown", "(unknown)", "-2", "no number")):
        return UNKNOWN
    return WITHHELD


def epoch(raw: str | None) -> tuple[datetime | None, str | None, int | None]:
    """(UTC moment, unit as written, ms) of an epoch time written in ms, or in seconds by some tools."""
    try:
        value = int(raw)
    except (TypeError, ValueError):
        try:
            value = int(float(raw))
        except (TypeError, ValueError, OverflowError):
            return NO_TIME
    if value <= 0:
        return NO_TIME
    try:
        if value < SECONDS_BEFORE:
            return datetime.fromtimestamp(value, UTC), "s", value * 1000
        return datetime.fromtimestamp(value / 1000, UTC), "ms", value
    except (OverflowError, OSError, ValueError):
        return NO_TIME


def completeness(problem: str | None, stated: int | None, read: int, noun: str) -> ParseWarning | None:
    """What to say when a backup was cut short, or holds other than the count it states."""
    if problem:
        return ParseWarning(f"Only partly read: {problem}. The {read} {noun}(s) before that point were kept.")
    if stated is not None and stated != read:
        return ParseWarning(f"The backup says it holds {stated} {noun}s, but {read} were found in it.")
    return None


def end_of_xml(root_tag: str | None, roots, read: int, stated: int | None, problem: str | None, *, backup: str,
               app: str, noun: str) -> list[ParseWarning]:
    """What to say once a backup's XML is read: that it could not be read as `backup` (no root
    element), or that its root is one no `app` writes (fatal when nothing was read under it), then
    whether it was cut short or holds other than it states. A fatal warning comes alone."""
    if root_tag is None:
        return [ParseWarning(f"Could not read this as {backup}: {problem or 'no XML root element'}.", fatal=True)]
    warnings = []
    if root_tag not in roots:
        if not read:
            return [ParseWarning(f"This is not {backup}: its XML starts with <{root_tag}>.", fatal=True)]
        warnings.append(ParseWarning(f"Its XML starts with <{root_tag}>, which no {app} writes; the {read} "
                                     f"{noun}(s) in it were read all the same."))
    warning = completeness(problem, stated, read, noun)
    if warning:
        warnings.append(warning)
    return warnings


def damage_warning(problem: str, noun: str, locator: str | None) -> ParseWarning:
    """A stretch of a backup that is not XML (a damaged byte): the item there is lost, the rest read on."""
    return ParseWarning(f"This part of the backup is damaged ({problem}) and could not be read; reading went on "
                        f"with the next {noun}. The file is kept exactly as it was.", locator=locator)


def stated_count(raw: str | None) -> int | None:
    """The count a backup states of itself (`<smses count="N">`), if it is a number."""
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


class Parties:
    """`party` remembered for one original (a backup names the same few people thousands of
    times); a `~`-joined address (a group thread) gives several."""

    def __init__(self, phone, limit: int = 65536):
        self.phone = phone
        self.limit = limit
        self.memo: dict[str, tuple[list[str], str]] = {}

    def __call__(self, raw: str | None) -> list[str]:
        return self.with_key(raw)[0]

    def with_key(self, raw: str | None) -> tuple[list[str], str]:
        """The parties (a list of the caller's own) and the same joined by commas, as identities name them."""
        found = self.memo.get(raw)
        if found is None:
            if len(self.memo) >= self.limit:
                self.memo.clear()
            parties = [party(one, self.phone) for one in (raw or "").split("~")]
            found = self.memo[raw] = (parties, ",".join(parties))
        return list(found[0]), found[1]


class Identities:
    """Stable identities of events, so overlapping backups add only what is new.

    The identity hashes what the event is (kind, time, parties, content), never which
    export carried it. Two identical events in one file (three missed calls from the
    same number in the same minute) stay distinct: the n-th repeat of a key gets n in its
    identity, so a later export holding the same repeats maps them to the same identities.
    Repeats are counted among the last `window` events, which is where they sit in a
    time-ordered backup; memory stays bounded.
    """

    def __init__(self, window: int = 4096):
        self.window = window
        self.recent: OrderedDict[str, int] = OrderedDict()

    def __call__(self, key: str) -> str:
        recent = self.recent
        seen = recent.pop(key, 0)
        recent[key] = seen + 1
        if len(recent) > self.window:
            recent.popitem(last=False)
        material = f"{key}\x1e{seen}" if seen else key
        hasher = _IDENTITY_HASH.copy()      # a copy of a made hasher: cheaper than making one, per event
        hasher.update(material.encode())
        return hasher.hexdigest()


def backup_record(stored: StoredOriginal, stamp_raw: str | None, stamp_source: str, *, problem: str | None,
                  **facts) -> Record:
    """The record standing for a whole backup file: what it says of itself and what was read.

    Dated by the backup's own timestamp when it has one, else by the file's mtime. It is a
    container (`metadata.container`): its messages or calls are the events, not the copy itself."""
    meta = dict(stored.source_meta, **{key: value for key, value in facts.items() if value or value == 0},
                container=True)
    if problem:
        meta.update(partial=True, error=problem)
    record = Record(kind="file", metadata=meta)
    moment, _unit, _ms = epoch(stamp_raw)
    if moment:
        record.occurred_at, record.occurred_at_source, record.occurred_at_raw = moment, stamp_source, stamp_raw
    else:
        date_by_file_time(record, stored.source_meta)
    return record


APPLE_EPOCH = 978307200   # 2001-01-01T00:00:00Z


def apple_time(raw: str | None) -> datetime | None:
    """Apple's epoch (2001-01-01 UTC) in seconds, or in nanoseconds from iOS 11 on."""
    try:
        value = float(raw)          # CallHistory writes seconds with a fraction
    except (TypeError, ValueError):
        return None
    if value <= 0:
        return None
    seconds = value / 1e9 if value > 100_000_000_000 else value
    try:
        return datetime.fromtimestamp(APPLE_EPOCH + seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
