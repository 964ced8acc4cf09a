"""A run's summary in plain words: what was given, what was new, what the case already had,
what could not be kept, each on a line of its own, and a line showing they add up.

    Kept 3 new emails.
    Kept 1 attachment found inside them.
    In all: 3 given = 3 new + 0 already in the case + 0 not kept.
    Records written: 4.
    INBOX: all 3 messages in the folder were kept.
"""

from __future__ import annotations

from ingest.pipeline import RunSummary

NOUNS = {"email": ("email", "emails"), "attachment": ("attachment", "attachments"),
         "sms": ("text message", "text messages"), "mms": ("MMS message", "MMS messages"), "call": ("call", "calls"),
         "whatsapp": ("WhatsApp message", "WhatsApp messages"), "screenshot": ("screenshot", "screenshots"),
         "image": ("picture", "pictures"), "note": ("note", "notes"), "file": ("file", "files"),
         "unparsed": ("file it could not read", "files it could not read"),
         "message": ("message", "messages"), "item": ("item", "items")}


def counted(count: int, noun: str) -> str:
    """'1 email', '3 emails', '2,403 files'."""
    one, many = NOUNS.get(noun, (noun, noun + "s"))
    return f"{count:,} {one if count == 1 else many}"


def listed(tally: dict[str, int], adjective: str = "") -> str:
    """'3 emails and 1 attachment', largest first ('3 new emails' with an adjective)."""
    parts = [counted(count, kind).replace(" ", f" {adjective}", 1) if adjective else counted(count, kind)
             for kind, count in sorted(tally.items(), key=lambda item: (-item[1], item[0]))]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def summary_lines(summary: RunSummary) -> list[str]:
    given_new = sum(summary.kept.values())
    given_held = summary.already_held - summary.already_inside
    them = "them" if given_new + given_held > 1 else "it"
    lines = []
    if given_new:
        adopted = (f" ({summary.adopted:,} of them stored by an interrupted run and finished now)"
                   if summary.adopted else "")
        lines.append(f"Kept {listed(summary.kept, 'new ')}{adopted}.")
    if summary.found_inside:
        lines.append(f"Kept {listed(summary.found_inside)} found inside {them}.")
    if given_held:
        lines.append(f"Already in the case: {given_held:,} (nothing was added twice).")
    if summary.already_inside:
        lines.append(f"Found inside {them} and already in the case: {summary.already_inside:,}.")
    if summary.failed:
        lines.append(f"Could NOT be kept: {summary.failed:,}:")
        lines.extend(f"  - {problem}" for problem in summary.problems)
    given = given_new + given_held + summary.failed
    lines.append(f"In all: {given:,} given = {given_new:,} new + {given_held:,} already in the case + "
                 f"{summary.failed:,} not kept." if given else "Nothing was given: the source held nothing to keep.")
    lines.append(f"Records written: {summary.records:,}.")
    if summary.unparsed:
        lines.append(f"Of these, {counted(summary.unparsed, 'original')} could not be read as "
                     f"{'its' if summary.unparsed == 1 else 'their'} format: kept as {'it is' if summary.unparsed == 1 else 'they are'}, marked 'unparsed'.")
    if summary.duplicates:
        lines.append(f"{counted(summary.duplicates, 'item')} were already held from an earlier export and were not "
                     "added twice.")
    lines.extend(expected_line(summary, name) for name in summary.expected)
    lines.extend(summary.notes)
    lines.extend(summary.not_read)
    return lines


def reparse_lines(summary: RunSummary) -> list[str]:
    """`ingest reparse`: what was read again, what was already read by today's parsers, adding up."""
    lines = []
    if summary.reparsed:
        lines.append(f"Read again with today's parsers: {counted(summary.reparsed, 'original')}.")
    if summary.already_held:
        lines.append(f"Already read by today's parsers: {summary.already_held:,}.")
    total = summary.reparsed + summary.already_held
    lines.append(f"In all: {total:,} = {summary.reparsed:,} read again + {summary.already_held:,} already up to date.")
    lines.append(f"Records written: {summary.records:,}" + (" (the records they replace are kept, marked "
                                                            "superseded)." if summary.records else "."))
    lines.extend(summary.notes)
    return lines


def expected_line(summary: RunSummary, container: str) -> str:
    """'calls.xml: all 6 calls in the backup were kept.', or the shortfall, never silent."""
    expected, held = summary.expected[container], summary.acquired.get(container, 0)
    noun, place = summary.expected_what.get(container, ("item", "source"))
    if held == expected:
        if expected == 1:
            return f"{container}: the one {counted(1, noun)[2:]} in the {place} was kept."
        return f"{container}: all {counted(expected, noun)} in the {place} were kept."
    if held > expected:
        return f"{container}: the {place} said it holds {counted(expected, noun)}; {held:,} were found and kept."
    return (f"{container}: SHORTFALL: the {place} says it holds {counted(expected, noun)}, but only {held:,} "
            f"could be kept; {expected - held:,} missing.")
