"""report.pdf: the printable report. Page 1 is a summary, then an incident index (one line per
incident), then the exhibits with their hashes. Message detail stays in the HTML report.

    write_pdf(scope, out_path, *, files_hash=..., seal=..., exported_at=..., work=DIR, part_rows=N) -> None

The layout engine is Debian's headless Chromium (print to PDF), chosen over WeasyPrint:
- on the same 3,000-line index, measured in the same run, Chromium took 28 s and WeasyPrint
  103 s (WeasyPrint's table layout is slow, and grows with every page in our own process);
- Chromium lays out in its own process, so the export's own memory stays flat however many
  pages there are, and Chromium 131+ supports CSS Paged Media margin boxes with
  `counter(page)` and `counter(pages)`, which give "Page X of Y" on every page;
- the tests already drive the same Chromium.

Printed in parts. One Chromium run lays out at most `part_rows` rows (incidents, then exhibits):
at 100,000 incidents (about 1,200 pages) one print-to-PDF exits 0 and writes no file, even for a
bare table, and a part keeps Chromium's memory and each run's time bounded. The rows are streamed
from the index into the parts' HTML files in one pass, never held; then the parts print, two at a
time (Chromium lays a page out on one core). The parts carry no margins' text; once all are
printed, their page count Y is known, and Chromium prints one light document of Y empty pages
whose CSS margin boxes give "Page X of Y", the case name and the hash. pikepdf (qpdf) joins the
parts and lays each margin page over its page as a form XObject, leaving the content as printed,
in a process of its own (ingest.features.pdf_join). pypdf would rewrite every page's content
stream: on 1,180 pages, measured here, it took 40 s and 400 MiB for a 250 MB file, pikepdf 9 s and
77 MiB for 9 MB. Each part but the last ends where its rows end, so a part may end on a short
page. Tagged PDF is off (--disable-pdf-tagging): Chromium's tags made each page about 150 KB
(180 MB for 1,200 pages) and its print 1.7 times slower, and a joined file could not keep one
structure tree anyway; the text stays selectable and searchable.

It runs with no network: a host resolver that resolves nothing, no first-run, sync, extension
or component updates, and a throwaway profile. The HTML is written to a file (streamed from a
jinja2 generator), never held in memory.

Every page carries "Page X of Y", the case name and a hash fixing the bundle's contents. The
PDF is listed in SHA256SUMS, so it cannot print SHA256SUMS' own hash. It prints the "list of
files" hash instead: the SHA-256 of the SHA256SUMS lines of every file under data/ except
data/report.pdf, sorted. An officer recomputes it with
    grep '  data/' SHA256SUMS | grep -v '  data/report.pdf$' | LC_ALL=C sort | sha256sum
(first 16 hex digits), which ties the PDF to every other file of the bundle's payload.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo

import jinja2
import pikepdf
from markupsafe import Markup

from ingest import TOOL
from ingest.model.errors import UsageError
from ingest.features import parties
from ingest.features.exhibits import exhibit_list
from ingest.features.handover import incident_lines, local_time
from ingest.features.report import COLOURS, weekly_chart
from ingest.features.timeline import Scope

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
BASE_TIMEOUT_S = 120
TIMEOUT_PER_ROW_S = 0.05       # measured ~0.02 s per line on a loaded 2-core machine
PART_ROWS = 5000               # rows per Chromium run: about 60 pages, 15 s here (see above)
PRINTERS = 2                   # Chromium runs at once (each lays out on one core)
LIST_HASH_DIGITS = 16
PAYLOAD_PREFIX = "data/"
PDF_NAME = "report.pdf"
_END = object()

_environment = jinja2.Environment(loader=jinja2.PackageLoader("ingest.features", "templates"),
                                  autoescape=jinja2.select_autoescape(["html", "j2"]),
                                  trim_blocks=True, lstrip_blocks=True)


def css_string(value) -> Markup:
    """Text safe inside a CSS string in a <style> element: anything but plain characters escaped."""
    return Markup("".join(char if char.isalnum() or char in " .,:-_/()" else f"\\{ord(char):x} "
                          for char in str(value)))


_environment.filters["css_string"] = css_string


def chromium() -> str:
    """The Chromium to print with, or a plain error saying how to get one."""
    for name in CHROMIUM:
        found = shutil.which(name)
        if found:
            return found
    raise UsageError("The printable report needs Chromium, which is not installed.",
                     hint="Install it (Debian: apt-get install chromium), or export with --no-pdf.")


def list_hash(payload: Path) -> str:
    """SHA-256 of the sorted `sha256sum` lines of every file of the payload but report.pdf, each named
    data/<its path in `payload`> as it will be in SHA256SUMS (see above)."""
    lines = []
    for folder, _dirs, names in os.walk(payload):
        for name in names:
            path = Path(folder) / name
            relative = PAYLOAD_PREFIX + path.relative_to(payload).as_posix()
            if relative == PAYLOAD_PREFIX + PDF_NAME:
                continue
            with open(path, "rb") as handle:
                lines.append(f"{hashlib.file_digest(handle, 'sha256').hexdigest()}  {relative}\n")
    return hashlib.sha256("".join(sorted(lines, key=str.encode)).encode()).hexdigest()


def write_pdf(scope: Scope, out_path: Path, *, files_hash: str | None, seal: str | None, exported_at: str,
              work: Path | None = None, producer: str | None = None, part_rows: int = PART_ROWS) -> None:
    """Render the printable report of `scope` to `out_path`, printing at most `part_rows` rows per part."""
    case = scope.case
    zone = ZoneInfo(case.config.timezone)
    span = case.index.time_span(within=scope.table)
    context = {
        "case": case.config, "tool": TOOL, "exported_at": exported_at, "seal": seal,
        "producer": producer or case.config.operator,
        "files_hash": (files_hash or "")[:LIST_HASH_DIGITS], "counts": scope.counts(),
        "period": [local_time(moment, zone) for moment in span] if span else None,
        "chart": weekly_chart(scope, zone), "colours": COLOURS, "parties": _parties(scope),
    }
    tables = [_Table("index", incident_lines(scope)), _Table("exhibits", exhibit_list(case, within=scope.table))]
    scratch = Path(tempfile.mkdtemp(prefix="pdf-", dir=work)).resolve()   # Chromium runs in it: no relative paths
    try:
        # Every part's HTML first, so that reading the index ends before the printing (minutes at 100,000 rows).
        parts: list[tuple[Path, Path, float]] = []
        while not parts or not all(table.finished for table in tables):
            page, part = scratch / f"part{len(parts) + 1}.html", scratch / f"part{len(parts) + 1}.pdf"
            printed = sum(table.given for table in tables)
            _render(page, "report_pdf.html.j2", summary=not parts, pieces=_pieces(tables, part_rows), **context)
            rows = sum(table.given for table in tables) - printed
            parts.append((page, part, BASE_TIMEOUT_S + TIMEOUT_PER_ROW_S * rows))
        printers = ThreadPoolExecutor(max_workers=min(PRINTERS, os.cpu_count() or 1))
        try:
            for _printed in printers.map(lambda job: _print(*job, scratch), parts):
                pass
        finally:
            printers.shutdown(cancel_futures=True)     # a part that failed stops the parts not yet begun
        pages = sum(_page_count(part) for _page, part, _timeout in parts)
        margins = scratch / "margins.pdf"
        _render(scratch / "margins.html", "report_pdf_margins.html.j2", pages=pages, **context)
        _print(scratch / "margins.html", margins, BASE_TIMEOUT_S + TIMEOUT_PER_ROW_S * pages, scratch)
        _join([part for _page, part, _timeout in parts], margins, out_path, scratch,
              BASE_TIMEOUT_S + TIMEOUT_PER_ROW_S * pages)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _Table:
    """One table of the report (the incident index, the exhibit list), its rows handed out part by part
    as they stream from the index; one row is read ahead to know where the table ends."""

    def __init__(self, name: str, rows: Iterator[dict]):
        self.name = name
        self._rows = rows
        self._ahead = None
        self.started = False
        self.given = 0

    def _peek(self):
        if self._ahead is None:
            self._ahead = next(self._rows, _END)
        return self._ahead

    @property
    def finished(self) -> bool:
        return self.started and self._peek() is _END

    def take(self, limit: int) -> Iterator[dict]:
        self.started = True
        for _row in range(limit):
            if self._peek() is _END:
                return
            row, self._ahead = self._ahead, None
            self.given += 1
            yield row


def _pieces(tables: list[_Table], budget: int) -> Iterator[dict]:
    """The pieces of tables one part prints: each table's rows where the last part stopped, up to
    `budget` rows in all. Lazy: a piece's rows are written before the next piece is decided."""
    for table in tables:
        if table.finished:
            continue
        if budget <= 0:
            return
        given = table.given
        yield {"name": table.name, "first": not table.started, "rows": table.take(budget)}
        budget -= table.given - given
        if not table.finished:
            return


def _render(page: Path, template: str, **context) -> None:
    with open(page, "w", encoding="utf-8", newline="\n") as handle:
        for chunk in _environment.get_template(template).generate(**context):
            handle.write(chunk)


def _print(page: Path, out_path: Path, timeout: float, scratch: Path) -> None:
    command = [chromium(), "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-extensions", "--host-resolver-rules=MAP * ~NOTFOUND", "--no-pdf-header-footer",
               "--disable-pdf-tagging",
               f"--user-data-dir={scratch / ('profile-' + out_path.stem)}",      # one each: parts print at once
               f"--print-to-pdf={out_path.resolve()}", page.as_uri()]
    if os.geteuid() == 0:
        command.insert(1, "--no-sandbox")      # Chromium refuses to run as root with its sandbox
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, cwd=scratch,
                              env=dict(os.environ, HOME=str(scratch)))
    except subprocess.TimeoutExpired:
        raise UsageError(f"Chromium took longer than {int(timeout)} s to print the report, so it was stopped.",
                         hint="Export a smaller selection, or export with --no-pdf.") from None
    if done.returncode != 0 or not out_path.exists() or out_path.stat().st_size == 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise UsageError(f"Chromium could not print the report ({reason[0][:200]}).",
                         hint="Check that Chromium runs (chromium --version), or export with --no-pdf.")


def _page_count(pdf: Path) -> int:
    with pikepdf.open(pdf) as document:
        return len(document.pages)


def _join(parts: list[Path], margins: Path, out_path: Path, scratch: Path, timeout: float) -> None:
    """The parts one after another, each page under its page of margins, joined in a process of its own
    (ingest.features.pdf_join says why)."""
    try:
        done = subprocess.run([sys.executable, "-m", "ingest.features.pdf_join", str(out_path.resolve()),
                               str(margins), *map(str, parts)], capture_output=True, cwd=scratch, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UsageError(f"Joining the printed parts of the report took longer than {int(timeout)} s, so it was "
                         "stopped.", hint="Export a smaller selection, or export with --no-pdf.") from None
    if done.returncode != 0 or not out_path.exists():
        reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise UsageError(f"The printed parts of the report could not be joined ({reason[0][:200]}).",
                         hint="Export again, or export with --no-pdf.")


def _parties(scope: Scope) -> list[dict]:
    """Each party's contacts, and what came after each request to stop (ingest.features.parties)."""
    shown = []
    zone = ZoneInfo(scope.case.config.timezone)
    for party in parties.list_parties(scope.case):
        if party.get("me"):
            continue
        pattern = parties.show(scope.case, party["name"], table=scope.table)
        requests = [{"when": local_time(request["at"], zone) if request.get("at") else "undated",
                     "after": request["contacts_after"]} for request in pattern.get("requests_to_stop") or []]
        shown.append({"name": pattern["name"], "contacts": pattern["contacts"], "by_kind": pattern["by_kind"],
                      "requests": requests})
    return shown
