"""report.pdf printed in parts (ingest.features.pdf): a small part size makes a modest case print
in several Chromium runs, joined into one PDF whose every page carries its own "Page X of Y", the
case name and the list hash. Checked with Debian's chromium, pdfinfo and pdftotext."""

from __future__ import annotations

import re
import shutil

import pytest
from click.testing import CliRunner

from ingest.case import Case
from ingest.cli import cli
from ingest.features.exhibits import give_marks
from ingest.features.pdf import write_pdf
from ingest.features.timeline import Scope
from test_pack import page_text, pdf_pages, run

pytestmark = pytest.mark.skipif(not shutil.which("chromium") or not shutil.which("pdftotext"),
                                reason="Debian's chromium and poppler-utils are not installed")

NAME = 'R v "J Smith" & others: harassment'
FILES_HASH = "0123456789abcdef" + "f" * 48
BACKUPS, PER_BACKUP = 4, 50          # 200 incidents in 4 exhibits


@pytest.fixture
def sms_case(tmp_path):
    """A case of 200 SMS, in time order from "Message 0" to "Message 199", held in four backups."""
    start = 1704067200000      # 2024-01-01 00:00 UTC
    folder = tmp_path / "phone"
    folder.mkdir()
    for backup in range(BACKUPS):
        rows = "".join(f'  <sms protocol="0" address="07700 900123" date="{start + n * 3_600_000}" type="1" '
                       f'body="Message {n}: I saw you at the station" read="1" />\n'
                       for n in range(backup * PER_BACKUP, (backup + 1) * PER_BACKUP))
        (folder / f"sms-{backup}.xml").write_text(
            f"<?xml version='1.0' encoding='UTF-8'?>\n<smses count=\"{PER_BACKUP}\">\n{rows}</smses>\n")
    root = tmp_path / "case"
    Case.init(root, name=NAME, timezone="Europe/London", region="GB", operator="Sam Parker").close()
    done = CliRunner().invoke(cli, ["--case", str(root), "run", "--source", "sms", str(folder), "--json"])
    assert done.exit_code == 0, done.output
    with Case.open(root) as opened:
        assert give_marks(opened) == BACKUPS
        yield opened


def printed(case, out, part_rows=None):
    extra = {"part_rows": part_rows} if part_rows else {}
    write_pdf(Scope(case), out, files_hash=FILES_HASH, seal="ABCD-EFGH-IJKL-MNOP", exported_at="2026-11-30T18:00:00Z",
              work=out.parent, **extra)
    return pdf_pages(out)


def index_numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"Message (\d+): I saw you", text)]


def test_a_report_printed_in_parts_numbers_every_page_of_the_whole(sms_case, tmp_path):
    # 200 index rows and 4 exhibit rows, 67 rows a part: the index runs over 3 parts and the exhibit
    # list starts at the end of the third and goes on in a fourth.
    pdf = tmp_path / "parts.pdf"
    pages = printed(sms_case, pdf, part_rows=67)
    # page 1 the summary; then a page per part, each part starting on a page of its own
    assert pages == 5
    texts = [page_text(pdf, page) for page in range(1, pages + 1)]
    for number, text in enumerate(texts, 1):
        assert f"Page {number} of {pages}" in text
        assert NAME in text and "list of files 0123456789abcdef" in text
        assert "Page" not in text.replace(f"Page {number} of {pages}", "")      # one number, the right one
    first = " ".join(texts[0].split())
    assert f"Summary: {NAME}" in first and "Produced by Sam Parker" in first and "Seal code ABCD-EFGH-IJKL-MNOP" in first
    assert index_numbers(texts[0]) == []
    # the incident index in order across the parts: first and last present, none repeated
    assert index_numbers("".join(texts)) == list(range(200))
    assert [index_numbers(text)[:1] for text in texts[1:4]] == [[0], [67], [134]]
    assert texts[1].count("Incident index") == 1 and "Incident index" not in "".join(texts[2:])
    # the exhibits go on over the last part boundary, with their heading once
    assert "Exhibits" in texts[3] and "Exhibits" not in texts[4]
    assert re.findall(r"^\s*SP/(\d)\s", texts[3], re.M) == ["1"]
    assert re.findall(r"^\s*SP/(\d)\s", texts[4], re.M) == ["2", "3", "4"]
    # the same report printed in one part holds the same lines, on fewer pages
    whole = tmp_path / "whole.pdf"
    assert printed(sms_case, whole) == 4
    joined = run("pdftotext", "-layout", pdf, "-").stdout
    single = run("pdftotext", "-layout", whole, "-").stdout
    assert index_numbers(single) == index_numbers(joined)
    assert [f"Page {n} of 4" in page_text(whole, n) for n in range(1, 5)] == [True] * 4
    info = run("pdfinfo", pdf).stdout
    assert re.search(rf"^Title:\s+{re.escape(NAME)}: evidence report$", info, re.M)


def test_a_part_that_ends_with_the_index_starts_the_exhibits_on_the_next(sms_case, tmp_path):
    pdf = tmp_path / "parts.pdf"
    pages = printed(sms_case, pdf, part_rows=100)     # two parts of index rows, then the exhibits alone
    texts = [page_text(pdf, page) for page in range(1, pages + 1)]
    # 100 rows take two pages: the summary, two pages a part, then the exhibits on a page of their own
    assert pages == 6
    assert index_numbers("".join(texts)) == list(range(200))
    assert index_numbers(texts[3])[0] == 100
    assert "Exhibits" not in "".join(texts[:5]) and "Exhibits" in texts[5] and index_numbers(texts[5]) == []
    assert re.findall(r"^\s*SP/(\d)\s", texts[5], re.M) == ["1", "2", "3", "4"]
    assert all(f"Page {n} of 6" in text for n, text in enumerate(texts, 1))


def test_an_empty_case_prints_its_summary_and_empty_tables(case, tmp_path):
    pdf = tmp_path / "empty.pdf"
    assert printed(case, pdf, part_rows=1) == 2
    assert "No dated incidents." in page_text(pdf, 1) and "Page 1 of 2" in page_text(pdf, 1)
    second = page_text(pdf, 2)
    assert "Incident index" in second and "Exhibits" in second and "Page 2 of 2" in second


def test_an_export_without_chromium_stops_with_one_plain_line(ingest, tmp_path):
    from handoff_helpers import build_mixed

    build_mixed(ingest, tmp_path / "evidence")
    empty = tmp_path / "no-programs"
    empty.mkdir()
    result = ingest("export", "--out", tmp_path / "bundle", env={"PATH": str(empty)})
    assert result.exit_code == 2
    assert result.stderr == ("ingest: The printable report needs Chromium, which is not installed. Install it "
                             "(Debian: apt-get install chromium), or export with --no-pdf.\n")
    assert not (tmp_path / "bundle").exists() and not list(tmp_path.glob(".ingest-export-*"))
