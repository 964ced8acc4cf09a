"""No local paths and no host name leave the case in a bundle or a report, unless asked for."""

from __future__ import annotations

import json
import socket
import zipfile

import pytest

from hypothesis import given, settings, strategies as st

from ingest.model import privacy
from ingest.model.privacy import display_path, scrub_text

from handoff_helpers import build_mixed, screenshot

HOST = "victims-laptop-7f3a"


@pytest.fixture
def private_case(ingest, tmp_path, monkeypatch):
    """Evidence in a home folder named after the victim and in a temp folder, on a named machine."""
    home = tmp_path / "home" / "samira"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(socket, "gethostname", lambda: HOST)
    build_mixed(ingest, home / "Evidence")
    shots = tmp_path / "elsewhere" / "shots"
    shots.mkdir(parents=True)
    screenshot(shots / "Screenshot_20240216.png", "I AM WATCHING YOU", "2024-02-16T22:05:00")
    ingest.json("run", "--source", "files", shots, "--json")
    voice = home / "doorbell.m4a"
    voice.write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(range(200)))
    ingest.json("note", "Rang the doorbell and left", "--at", "2024-02-18 23:10", "--attach", voice, "--json")
    case_log = (ingest.case_dir / "custody.jsonl").read_text()
    assert str(home) in case_log and HOST in case_log          # the case itself keeps them
    return ingest, home


def leaks(data: bytes, tmp_path) -> list[str]:
    needles = [str(tmp_path), "/tmp/", "pytest-of", "samira", HOST]
    return [needle for needle in needles if needle.encode() in data]


def test_no_path_or_host_name_in_a_folder_bundle_or_a_report(private_case, tmp_path):
    ingest, home = private_case
    out = tmp_path / "bundle"
    assert ingest("export", "--out", out).exit_code == 0
    found = {p.relative_to(out).as_posix(): leaks(p.read_bytes(), tmp_path) for p in out.rglob("*") if p.is_file()}
    assert {name: hits for name, hits in found.items() if hits} == {}
    assert ingest("verify", out).exit_code == 0
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    keys = {r["source"]["key"] for r in manifest["records"] if r["source"]["locator"] is None}
    assert "shots/Screenshot_20240216.png" in keys and "Evidence/letter-left-at-door.txt" in keys
    assert "doorbell.m4a" in keys                              # in the home folder itself: no folder shown
    assert manifest["case"]["operator"] == "Tester"            # the operator's name is their statement: it stays

    report = tmp_path / "report.html"
    assert ingest("report", "--out", report).exit_code == 0
    assert leaks(report.read_bytes(), tmp_path) == []
    assert report.stat().st_mode & 0o777 == 0o600


def test_no_path_or_host_name_in_a_zip_bundle(private_case, tmp_path):
    ingest, _home = private_case
    out = tmp_path / "bundle.zip"
    assert ingest("export", "--out", out).exit_code == 0
    assert out.stat().st_mode & 0o777 == 0o600
    assert leaks(out.read_bytes(), tmp_path) == []                # names and headers
    with zipfile.ZipFile(out) as archive:
        found = {name: leaks(archive.read(name), tmp_path) for name in archive.namelist() if not name.endswith("/")}
    assert {name: hits for name, hits in found.items() if hits} == {}


def test_full_paths_only_when_asked(private_case, tmp_path):
    ingest, home = private_case
    out = tmp_path / "with-paths"
    assert ingest("export", "--out", out, "--include-paths").exit_code == 0
    manifest = (out / "data" / "manifest.json").read_text()
    assert str(home / "Evidence" / "letter-left-at-door.txt") in manifest
    assert ingest("verify", out).exit_code == 0               # the full custody lines chain as the public ones do


@pytest.mark.parametrize("path, shown", [
    ("/home/sam/Evidence/letters/2024-03-01.txt", "letters/2024-03-01.txt"),
    ("/home/sam/x.txt", "x.txt"),
    ("/Users/sam/Desktop/a b/c d.png", "a b/c d.png"),
    ("C:\\Users\\sam\\Pictures\\shot.png", "Pictures/shot.png"),
    ("/root/chat.txt", "chat.txt"),
])
def test_display_path(path, shown):
    assert display_path(path) == shown


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.sampled_from("/~\\:C ab.!;'-_\t\n\u00e9"), max_size=40).map(lambda tail: "/" + tail))
def test_a_text_that_is_one_path_is_shown_as_the_full_search_shows_it(text):
    """The short cut for one plain path (most source keys) says what LOCAL_PATH's search says."""
    assert scrub_text(text) == privacy.LOCAL_PATH.sub(lambda match: display_path(match.group(0)), text)


def test_scrub_text_leaves_addresses_and_words_alone():
    assert scrub_text("imap://me@mail.example/INBOX;UIDVALIDITY=7;UID=42") == "imap://me@mail.example/INBOX;UIDVALIDITY=7;UID=42"
    assert scrub_text("/home/sam/My Evidence/chat.zip!media/IMG-1.jpg") == "My Evidence/chat.zip!media/IMG-1.jpg"
    assert scrub_text("3/4 read; see /tmp/x/y/z.txt: cut short") == "3/4 read; see y/z.txt: cut short"
