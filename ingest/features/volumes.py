"""`ingest export --max-file-size 4G`: a bundle split into volumes for police upload portals.

    export_volumes(case, out_path, max_bytes, kinds=..., ...) -> list[ExportResult]

Each volume is a whole bundle of its own (BagIt bag, signed SHA256SUMS, README,
manifest, report, exhibits, statement...), so each verifies alone. An exhibit is
never split: a volume holds whole exhibits, in mark order, with every record of
them (within the selection, when there is one). The volumes are named
`NAME-vol1.zip`, `NAME-vol2.zip`... (or folders `NAME-vol1`...), and each one's
README says which volume it is and which exhibits it holds.
"""

from __future__ import annotations

import re
from pathlib import Path

from ingest.case import Case
from ingest.model.errors import UsageError
from ingest.features import exhibits as exhibit_marks
from ingest.features.export import ExportResult, export_bundle
from ingest.features.parties import values_of

SOURCE_TABLE = "volume_source"      # the selection the volumes share
VOLUME_TABLE = "volume_ids"         # the records of the volume being made
RECORD_OVERHEAD = 8192              # bytes a record adds in manifests, timelines and reports, generously
VOLUME_OVERHEAD = 1 << 20           # README, keys, BagIt files, the PDF's first pages
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """"4G" -> 4 GiB; "700M", "1.5G", "2000000" (bytes)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text or "", re.IGNORECASE)
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"{text!r} is not a file size.", hint="Write it like 4G, 700M or 2000000 (bytes).")
    return int(float(match.group(1)) * UNITS[match.group(2).upper()])


def plan(sizes: list[tuple[int, int, int]], max_bytes: int, prefix: str) -> list[list[int]]:
    """Exhibit marks grouped into volumes, in mark order, each volume's estimate within `max_bytes`."""
    volumes: list[list[int]] = []
    used = budget = max_bytes - VOLUME_OVERHEAD
    for mark, size, records in sizes:
        need = (size or 0) + records * RECORD_OVERHEAD
        if need > budget:
            raise UsageError(f"Exhibit {exhibit_marks.mark_label(prefix, mark)} alone needs about "
                             f"{_human(need)}, more than --max-file-size allows.",
                             hint="Give a larger --max-file-size; an exhibit is never split.")
        if used + need > budget:
            volumes.append([])
            used = 0
        volumes[-1].append(mark)
        used += need
    return volumes


def _human(size: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if size >= UNITS[unit]:
            return f"{size / UNITS[unit]:.1f} {unit}B"
    return f"{size} bytes"


def volume_path(out_path: Path, number: int) -> Path:
    if out_path.suffix.lower() == ".zip":
        return out_path.with_name(f"{out_path.stem}-vol{number}.zip")
    return out_path.with_name(f"{out_path.name}-vol{number}")


def export_volumes(case: Case, out_path: Path, max_bytes: int, *, kinds: list[str] | None = None,
                   since: str | None = None, until: str | None = None, party: list[str] | None = None,
                   **options) -> list[ExportResult]:
    """Export the case (or the selection) as volumes of at most about `max_bytes` each. One volume
    when everything fits: then the bundle is named `out_path` itself."""
    out_path = Path(out_path)
    case.require_intact()
    exhibit_marks.give_marks(case)
    selected = bool(kinds or since or until or party)
    if selected:
        case.index.select_with_family(SOURCE_TABLE, kinds=kinds, since=since, until=until,
                                      identifiers=values_of(case, party) if party else None,
                                      conversations=True)
    within = SOURCE_TABLE if selected else None
    try:
        groups = plan(case.index.exhibit_sizes(within=within), max_bytes, exhibit_marks.initials(case))
        if len(groups) <= 1:
            return [export_bundle(case, out_path, kinds=kinds, since=since, until=until, party=party, **options)]
        paths = [volume_path(out_path, number) for number in range(1, len(groups) + 1)]
        taken = [path for path in paths if path.exists()]
        if taken:
            raise UsageError(f"{taken[0]} already exists.", hint="Choose a new name for the bundle; nothing is overwritten.")
        prefix = exhibit_marks.initials(case)
        results = []
        for number, (marks, path) in enumerate(zip(groups, paths), 1):
            case.index.select_exhibits(VOLUME_TABLE, marks, within=within)
            held = (exhibit_marks.mark_label(prefix, marks[0]) if len(marks) == 1 else
                    f"{exhibit_marks.mark_label(prefix, marks[0])} to {exhibit_marks.mark_label(prefix, marks[-1])}")
            description = f"{number} of {len(groups)}, exhibits {held}"
            results.append(export_bundle(case, path, kinds=kinds, since=since, until=until, party=party,
                                         volume=(VOLUME_TABLE, description), **options))
        return results
    finally:
        case.index.drop_temporary(SOURCE_TABLE)
        case.index.drop_temporary(VOLUME_TABLE)
