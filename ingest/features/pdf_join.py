"""Join the parts of report.pdf and lay each page of margins over its page (ingest.features.pdf).

    python -m ingest.features.pdf_join OUT MARGINS PART...

pikepdf (qpdf) keeps every page of the joined file in memory until it is saved, about 40 KB a
page (50 MiB for 1,200 pages, measured here), so write_pdf runs this in a process of its own
and the export's own memory stays flat, as it does while Chromium lays the parts out. Each
margin page becomes a form XObject drawn over its page; the parts' content is left as printed.
It imports pikepdf alone, so it starts quickly.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack

import pikepdf


def join(out: str, margins: str, parts: list[str]) -> None:
    with ExitStack() as open_files:
        joined = open_files.enter_context(pikepdf.open(parts[0]))      # keeps the first part's title
        for part in parts[1:]:
            joined.pages.extend(open_files.enter_context(pikepdf.open(part)).pages)
        marks = open_files.enter_context(pikepdf.open(margins))
        if len(marks.pages) != len(joined.pages):
            raise SystemExit(f"Chromium printed page numbers for {len(marks.pages)} pages instead of "
                             f"{len(joined.pages)}")
        for page, mark in zip(joined.pages, marks.pages):
            page.add_overlay(mark)
        joined.save(out)


if __name__ == "__main__":
    join(sys.argv[1], sys.argv[2], sys.argv[3:])
