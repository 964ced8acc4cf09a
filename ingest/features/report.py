"""`ingest report`: one self-contained HTML file an officer can read offline or print.

    write_report(case, out_path) -> number of records

The page is rendered by a jinja2 generator over records streamed from the index,
a chunk at a time, so memory does not grow with the case. Nothing in it loads
from anywhere else: styles are inline, the chart is inline SVG, thumbnails are
data: URIs, and a Content-Security-Policy forbids every remote load.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo

import jinja2

from ingest import TOOL
from ingest.case import PUBLIC_KEY, Case, key_fingerprint
from ingest.model.errors import UsageError
from ingest.model.privacy import scrub_record, scrub_text
from ingest.features.parties import show, values_of
from ingest.features.timeline import Scope, is_container, is_event
from ingest.model.times import iso_utc, utc_now

TEXT_LIMIT = 4000          # characters of a record's text shown; the rest is in the original
OCR_LIMIT = 600
THUMBNAIL_LIMIT = 512 * 1024
REPORT_TABLE = "report_ids"
# Each kind also has a black-and-white pattern (SVG, in the template), so a chart printed in
# grey still tells the channels apart.
PATTERNS = {"email": "lines", "attachment": "dots-sparse", "sms": "diagonal", "mms": "cross", "call": "solid",
            "whatsapp": "dots", "screenshot": "grid", "image": "grid", "note": "backward", "file": "none",
            "unparsed": "none"}
COLOURS = {"email": "#1f77b4", "attachment": "#9edae5", "sms": "#2ca02c", "mms": "#98df8a", "call": "#d62728",
           "whatsapp": "#17becf", "screenshot": "#9467bd", "image": "#c5b0d5", "note": "#ff7f0e",
           "file": "#7f7f7f", "unparsed": "#bcbd22"}
CHART = {"width": 960, "height": 240, "left": 44, "right": 12, "top": 12, "bottom": 44}

_environment = jinja2.Environment(loader=jinja2.PackageLoader("ingest.features", "templates"),
                                  autoescape=jinja2.select_autoescape(["html", "j2"]),
                                  trim_blocks=True, lstrip_blocks=True)


def write_report(case: Case, out_path: Path, *, parties: list[str] | None = None) -> int:
    """Write the report of every current record (or of those involving `parties`, named) to
    `out_path`; logs a custody line."""
    case.require_intact()
    scope = Scope(case)
    if parties:
        case.index.select_with_family(REPORT_TABLE, identifiers=values_of(case, parties))
        scope = Scope(case, REPORT_TABLE)
    try:
        count, sha256 = render_report(scope, Path(out_path), parties=parties)
    finally:
        case.index.drop_temporary(REPORT_TABLE)
    detail = {"path": str(out_path), "records": count, "sha256": sha256}
    if parties:
        detail["parties"] = list(parties)
    case.log_now("report", {}, detail)
    return count


def render_report(scope: Scope, out_path: Path, *, bundle: dict | None = None,
                  parties: list[str] | None = None, include_paths: bool = False) -> tuple[int, str]:
    """Render the report of `scope` into `out_path` (written whole, then renamed into place).

    `bundle` describes the export the report is part of, when it is; `parties` names the
    parties given a section of their own (default: every party but the owner). Local paths
    are shown short (ingest.model.privacy) unless `include_paths`. The file is private to the
    user (0600). Returns (records shown, SHA-256 of the file)."""
    case = scope.case
    zone = ZoneInfo(case.config.timezone)
    counts = scope.counts()
    total = sum(count for _kind, count in counts)
    shown = Counter()
    context = {
        "case": case.config, "tool": TOOL, "generated_at": iso_utc(utc_now()), "bundle": bundle,
        "fingerprint": _fingerprint(case), "counts": counts, "total": total, "colours": COLOURS,
        "span": _span(scope, zone), "chart": weekly_chart(scope, zone), "patterns": PATTERNS,
    }
    sections = [party_section(scope, name) for name in _section_names(case, parties)]
    # a selection (an export's) shows the parties it holds contacts from, unless they were named
    context["party_sections"] = [section for section in sections if parties or not scope.table
                                 or section["p"]["contacts"]]
    # three streamed passes: dated events on the timeline, items of unknown time, the containers
    streams = [scope.records() for _part in range(3)]

    def items(records, wanted):
        return (_item(case, record if include_paths else scrub_record(record), zone, shown)
                for record in records if wanted(record))

    context["items"] = items(streams[0], is_event)
    context["unknown_items"] = items(streams[1], lambda record: not record["occurred_at"] and not is_container(record))
    context["container_items"] = items(streams[2], is_container)
    context["custody"] = _custody(case, include_paths)
    if out_path.is_dir():
        raise UsageError(f"{out_path} is a folder.", hint="Give a file name for the report, e.g. --out report.html.")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".part")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "w", encoding="utf-8", newline="\n") as handle:
            for chunk in _environment.get_template("report.html.j2").generate(**context):
                handle.write(chunk)
        os.replace(partial, out_path)
    except PermissionError:
        partial.unlink(missing_ok=True)
        raise UsageError(f"Cannot write the report to {out_path}: no permission.",
                         hint="Choose a folder you can write to.") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        for records in streams:
            records.close()     # a failed render must not leave the index's read cursor open
    with open(out_path, "rb") as handle:
        sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
    return shown.value, sha256


class Counter:
    """How many records the streamed template has drawn."""

    def __init__(self):
        self.value = 0


# --- the chart -------------------------------------------------------------------
@dataclass
class Bar:
    x: float
    width: float
    title: str
    segments: list[tuple[str, float, float]]    # (kind, y, height)


def weekly_chart(scope: Scope, zone: ZoneInfo) -> dict:
    """Stacked bars of incidents per week (Monday to Sunday, case time zone), empty weeks included.

    An incident is a record that is an event of its own: a container (a backup, a chat export,
    an mbox) counts through the items read from it, not once more; a file found inside another
    (an attachment, a file attached to a note) counts through the message or note that carried
    it; originals nobody could read are not incidents."""
    weeks: dict[date, dict[str, int]] = {}
    for kind, moment in scope.case.index.incidents(within=scope.table):
        day = datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(zone).date()
        week = weeks.setdefault(day - timedelta(days=day.weekday()), {})
        week[kind] = week.get(kind, 0) + 1
    return stacked_weeks(weeks)


def stacked_weeks(weeks: dict[date, dict[str, int]], chart: dict = CHART) -> dict:
    """The geometry of a stacked bar chart of counts per kind per week (weeks start on Monday)."""
    if not weeks:
        return {"bars": [], "kinds": [], "weeks": 0}
    first, last = min(weeks), max(weeks)
    count = (last - first).days // 7 + 1
    peak = max(sum(week.values()) for week in weeks.values())
    top = _nice_ceiling(peak)
    c = chart
    plot_w = c["width"] - c["left"] - c["right"]
    plot_h = c["height"] - c["top"] - c["bottom"]
    slot = plot_w / count
    kinds = sorted({kind for week in weeks.values() for kind in week})
    bars, labels = [], []
    last_label_x = -1e9
    for number in range(count):
        start = first + timedelta(weeks=number)
        x = c["left"] + number * slot
        if start.day <= 7 or number == 0:        # the first week of a month
            if x - last_label_x >= 64:
                labels.append({"x": round(x, 2), "text": start.strftime("%b %Y")})
                last_label_x = x
        week = weeks.get(start)
        if not week:
            continue
        y = c["top"] + plot_h
        segments = []
        for kind in kinds:
            if week.get(kind):
                height = plot_h * week[kind] / top
                y -= height
                segments.append((kind, round(y, 2), round(height, 2)))
        title = f"Week of {start:%d %b %Y}: " + ", ".join(f"{week[k]} {k}" for k in kinds if week.get(k))
        bars.append(Bar(round(x + slot * 0.1, 2), round(max(slot * 0.8, 0.6), 2), title, segments))
    grid = [{"y": round(c["top"] + plot_h * (1 - value / top), 2), "value": value} for value in (0, top // 2, top)]
    return {"bars": bars, "kinds": kinds, "weeks": count, "peak": peak, "labels": labels, "grid": grid,
            "first": first, "last": last + timedelta(days=6), "dims": c, "base": c["top"] + plot_h}


def _nice_ceiling(value: int) -> int:
    """The smallest of 2, 4, 10, 20, 40, 100, ... at least `value`, so grid lines are round numbers."""
    step = 1
    while True:
        for factor in (2, 4, 10):
            if value <= factor * step:
                return factor * step
        step *= 10


# --- a section per party -------------------------------------------------------------
PARTY_CHART = {"width": 960, "height": 180, "left": 44, "right": 12, "top": 12, "bottom": 40}
HEAT = {"left": 44, "top": 22, "cell_w": 37, "cell_h": 22}


def _section_names(case: Case, parties: list[str] | None) -> list[str]:
    if parties:
        return list(dict.fromkeys(parties))
    return [row["name"] for row in case.index.parties() if not row["me"]]


def party_section(scope: Scope, name: str) -> dict:
    """What the report says of one party: `parties.show` over the report's records, drawn."""
    case = scope.case
    zone = ZoneInfo(case.config.timezone)
    pattern = show(case, name, table=scope.table)
    weeks = {date.fromisoformat(week): kinds for week, kinds in pattern["by_week_kind"].items()}
    peak = max(pattern["by_week"].values(), default=0)
    threats = []
    for threat in pattern["threats"]:
        record = case.index.record(threat["record"]) or {}
        words = " ".join((record.get("text") or record.get("subject") or "").split())
        threats.append({"record": threat["record"], "when": _local_or_unknown(threat["at"], zone),
                        "text": words if len(words) <= 160 else words[:159] + "…"})
    return {
        "p": pattern, "anchor": "party-" + hashlib.sha256(pattern["name"].encode()).hexdigest()[:12],
        "chart": stacked_weeks(weeks, PARTY_CHART), "heat": heat_map(pattern["hour_by_weekday"], pattern["weekdays"]),
        "first": _local_or_unknown(pattern["first"], zone), "last": _local_or_unknown(pattern["last"], zone),
        "requests": [{**request, "when": _local_or_unknown(request["at"], zone)}
                     for request in pattern["requests_to_stop"]],
        "reports": [{**item, "when": _local_or_unknown(item["at"], zone)} for item in pattern["reported_to_police"]],
        "threats": threats, "trend": _trend(pattern["trend_per_week"], len(pattern["by_week"]), peak),
    }


def heat_map(grid: list[list[int]], weekdays: list[str]) -> dict:
    """Cells of an hour-of-day x weekday map: darker is more, and every count is written in its cell."""
    peak = max((count for row in grid for count in row), default=0)
    h = HEAT
    cells = []
    for day, row in enumerate(grid):
        for hour, count in enumerate(row):
            shade = 0 if not peak else count / peak
            cells.append({"x": h["left"] + hour * h["cell_w"], "y": h["top"] + day * h["cell_h"], "count": count,
                          # grey from white (none) to near black (the most); the number is written on top
                          "fill": "#ffffff" if not count else "#" + f"{int(235 - 200 * shade):02x}" * 3,
                          "ink": "#ffffff" if shade > 0.55 else "#000000",
                          "title": f"{weekdays[day]} {hour:02d}:00-{hour:02d}:59: {count}"})
    return {"cells": cells, "peak": peak, "weekdays": weekdays, "dims": h,
            "width": h["left"] + 24 * h["cell_w"] + 4, "height": h["top"] + 7 * h["cell_h"] + 4}


def _trend(slope: float | None, weeks: int, peak: int) -> str:
    if slope is None:
        return "All contacts fell within one week."
    direction = ("rose" if slope > 0.05 else "fell" if slope < -0.05 else "stayed about level")
    change = f" by about {abs(slope):.1f} a week" if direction != "stayed about level" else ""
    return (f"Over {weeks} weeks, contacts per week {direction}{change} (a straight-line fit); "
            f"the busiest week had {peak}.")


def _local_or_unknown(moment: str | None, zone: ZoneInfo) -> str:
    return _local(moment, zone) if moment else "time unknown"


# --- the timeline items ------------------------------------------------------------
def _item(case: Case, record: dict, zone: ZoneInfo, shown: Counter) -> dict:
    shown.value += 1
    text = record.get("text") or ""
    item = {"r": record, "when": _local_or_unknown(record["occurred_at"], zone),
            "acquired": _local(record["acquired_at"], zone), "text": text[:TEXT_LIMIT],
            "text_more": max(0, len(text) - TEXT_LIMIT), "thumbnail": None, "ocr": None}
    for derived in record.get("derived", []):
        if derived["type"] == "thumbnail" and item["thumbnail"] is None:
            item["thumbnail"] = _data_uri(case, derived["blake3"])
        elif derived["type"] == "ocr_text" and item["ocr"] is None:
            item["ocr"] = _read_text(case, derived["blake3"], OCR_LIMIT)
    if item["ocr"] and " ".join(text.split()).startswith(item["ocr"].rstrip("…")):
        item["ocr"] = None      # the record's text is the OCR text already: shown once
    return item


def _local(moment: str, zone: ZoneInfo) -> str:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(zone).strftime("%a %d %b %Y, %H:%M:%S %Z")


def _data_uri(case: Case, blake3_hex: str) -> str | None:
    path = case.objects.path(blake3_hex)
    row = case.index.object(blake3_hex)
    media = (row["media_type"] if row else None) or "image/jpeg"
    try:
        if not media.startswith("image/") or path.stat().st_size > THUMBNAIL_LIMIT:
            return None
        return f"data:{media};base64,{base64.b64encode(path.read_bytes()).decode()}"
    except OSError:
        return None


def _read_text(case: Case, blake3_hex: str, limit: int) -> str | None:
    try:
        with open(case.objects.path(blake3_hex), "rb") as handle:
            data = handle.read(limit * 4)
    except OSError:
        return None
    text = " ".join(data.decode("utf-8", errors="replace").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _span(scope: Scope, zone: ZoneInfo) -> dict | None:
    span = scope.case.index.time_span(within=scope.table)
    if span is None:
        return None
    return {"first": _local(span[0], zone), "last": _local(span[1], zone)}


def _custody(case: Case, include_paths: bool) -> Iterator[dict]:
    for entry in case.custody.entries():
        detail = ((entry.get("private") or {}).get("detail") if include_paths else None) or entry.get("detail") or {}
        what = (detail.get("source_key") or detail.get("path") or detail.get("name") or detail.get("explanation")
                or detail.get("out") or (f"seal {detail['seal']}" if detail.get("seal") else ""))
        what = what if include_paths else scrub_text(str(what))
        subjects = entry.get("subjects") or {}
        yield {"seq": entry.get("seq"), "time": entry.get("time"), "action": entry.get("action"),
               "operator": entry.get("operator"), "what": what, "prev": entry.get("prev", ""),
               "objects": subjects.get("objects", []), "records": detail.get("records")}


def _fingerprint(case: Case) -> str | None:
    try:
        return key_fingerprint((case.root / PUBLIC_KEY).read_bytes())
    except (OSError, ValueError):
        return None
