"""Exhibit marks: SP/1, SP/2... in the order first acquired, stable, logged, never reused."""

from __future__ import annotations

import hashlib
import json
import tomllib

import pytest

from ingest.case import Case, initials_of
from ingest.model.errors import UsageError
from handoff_helpers import build_mixed, png


@pytest.fixture
def sp_case(tmp_path, ingest):
    root = tmp_path / "sp"
    result = ingest("init", root, "--operator", "Sarah Parker", "--initials", "sp")
    assert result.exit_code == 0, result.output
    assert "Exhibits will be marked SP/1, SP/2..." in result.stdout
    ingest.case_dir = root
    return ingest


def test_initials_come_from_the_option_or_the_operator(tmp_path, sp_case):
    assert tomllib.loads((tmp_path / "sp" / "case.toml").read_text())["initials"] == "SP"
    assert initials_of("Sarah Parker") == "SP" and initials_of("mary-jane o'neill") == "MJON"
    assert initials_of("tester") == "T" and initials_of("") == "EX"
    with Case.init(tmp_path / "other", operator="Dana Kim Lowe") as case:
        assert case.config.initials == "DKL"
    with pytest.raises(UsageError, match="'S/P' cannot be used as initials"):
        Case.init(tmp_path / "third", operator="x", initials="S/P")
    # a case made before initials existed opens, and its marks use the operator's
    toml = tmp_path / "other" / "case.toml"
    toml.write_text("".join(line + "\n" for line in toml.read_text().splitlines() if not line.startswith("initials")))
    with Case.open(tmp_path / "other") as case:
        assert case.config.initials == ""


def test_marks_in_acquisition_order_with_children_as_items(sp_case, tmp_path):
    build_mixed(sp_case, tmp_path / "evidence")
    photo = tmp_path / "later" / "photo.png"
    photo.parent.mkdir()
    photo.write_bytes(png(5, 5))
    listed = sp_case.json("exhibits", "--json")
    assert [(e["mark"], e["filename"].split("-")[0], e["description"], e["items"]) for e in listed] == [
        ("SP/1", "letter", "File", 1),
        ("SP/2", "saw", "Email, 1 photo", 2),
        ("SP/3", "sms", "SMS backup, 3 text messages", 4),
        ("SP/4", "note", "Diary note", 1),
        ("SP/5", "note", "Diary note", 1),
    ]
    sms = listed[2]
    assert (sms["first_event"], sms["last_event"]) == ("2024-02-05T09:00:00Z", "2024-02-12T09:00:00Z")
    assert sms["source"] == "evidence/sms-backup.xml"
    # the hashes are the original's, as kept
    kept = (tmp_path / "evidence" / "sms-backup.xml").read_bytes()
    assert sms["sha256"] == hashlib.sha256(kept).hexdigest() and sms["size"] == len(kept)

    # the photo attached to the email is item 1 of SP/2
    with Case.open(sp_case.case_dir, writable=False) as case:
        from ingest.features.exhibits import ExhibitLabels
        labels = ExhibitLabels(case)
        attachment = [r for r in case.index.records() if r["original"]["filename"] == "outside.png"][0]
        assert labels.of(attachment["original"]["blake3"]) == "SP/2 item 1"
        assert labels.exhibit_of(attachment["original"]["blake3"]) == "SP/2"

    # marks are stable: more evidence later takes the next numbers, the old ones never move
    sp_case.json("run", "--source", "files", photo.parent, "--json")
    again = sp_case.json("exhibits", "--json")
    assert [e["mark"] for e in again] == ["SP/1", "SP/2", "SP/3", "SP/4", "SP/5", "SP/6"]
    assert again[:5] == listed and again[5]["filename"] == "photo.png"

    # each mark is in the custody log once, with the object it marks
    lines = [json.loads(line) for line in (sp_case.case_dir / "custody.jsonl").read_text().splitlines()]
    given = [pair for line in lines if line["action"] == "exhibit_marks" for pair in line["detail"]["marks"]]
    assert [label for label, _ in given] == ["SP/1", "SP/2", "SP/3", "SP/4", "SP/5", "SP/2 item 1", "SP/6"]
    assert len({blake3 for _, blake3 in given}) == 7
    assert dict(given)["SP/3"] == sms["blake3"]
    # asking again gives nothing new and writes nothing
    before = (sp_case.case_dir / "custody.jsonl").read_bytes()
    sp_case.json("exhibits", "--json")
    assert (sp_case.case_dir / "custody.jsonl").read_bytes() == before


def test_exhibits_of_an_empty_case(ingest):
    result = ingest("exhibits")
    assert result.exit_code == 0 and "The case holds no originals yet." in result.stderr
    assert ingest.json("exhibits", "--json") == []
