"""`ingest export` and `ingest verify BUNDLE`, checked with independent tools: bagit.py, sha256sum, openssl."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from store.custody import line_hash, public_line

from ingest.case import key_fingerprint
from ingest.features.seal import seal_code
from handoff_helpers import STALKER_MAIL, build_mixed, screenshot

BAGIT = str(Path(sys.executable).parent / "bagit.py")


def tool(*argv, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(list(map(str, argv)), cwd=cwd, capture_output=True, text=True, timeout=120)


def bagit_validate(bag: Path):
    return tool(sys.executable, BAGIT, "--validate", bag)


def sha256sum_check(bag: Path):
    return tool("sha256sum", "-c", "SHA256SUMS", cwd=bag)


def openssl_verify(bag: Path):
    return tool("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "public_key.pem", "-rawin", "-in", "SHA256SUMS",
                "-sigfile", "SHA256SUMS.sig", cwd=bag)


def log_seal(case_dir: Path, lines: int) -> str:
    """The seal of the case's custody log at `lines` lines."""
    kept = (case_dir / "custody.jsonl").read_bytes().splitlines()
    return seal_code(lines, line_hash(kept[lines - 1]))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify(ingest, bundle: Path) -> tuple[int, list[str]]:
    result = ingest("verify", bundle)
    return result.exit_code, [line.removeprefix("PROBLEM ") for line in result.stdout.splitlines()
                              if line.startswith("PROBLEM ")]


@pytest.fixture
def mixed_case(ingest, case_dir, tmp_path):
    build_mixed(ingest, tmp_path / "evidence")
    shots = tmp_path / "shots"
    shots.mkdir()
    screenshot(shots / "Screenshot_20240216.png", "I AM WATCHING YOU", "2024-02-16T22:05:00")
    ingest.json("run", "--source", "files", shots, "--json")
    voice = tmp_path / "doorbell recording (1).m4a"
    voice.write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(range(200)))
    ingest.json("note", "Rang the doorbell and left", "--at", "2024-02-18 23:10", "--attach", voice, "--json")
    return ingest


@pytest.fixture
def bundle(mixed_case, case_dir, tmp_path):
    out = tmp_path / "bundle"
    result = mixed_case("export", "--out", out)
    assert result.exit_code == 0, result.output
    return out, result.stdout


def test_export_writes_a_signed_bag_that_standard_tools_accept(bundle, ingest, case_dir):
    out, stdout = bundle
    records = ingest.json("list", "--json")
    fingerprint = key_fingerprint((case_dir / "public_key.pem").read_bytes())
    files = sorted(p.relative_to(out / "data").as_posix() for p in (out / "data" / "originals").iterdir())
    lines = len((case_dir / "custody.jsonl").read_text().splitlines()) - 1     # the export line comes after
    assert stdout == (f"Exported {len(records)} record(s) and {len(files)} original(s) to {out}\n"
                      f"Signing key fingerprint (read this to the officer): {fingerprint}\n"
                      f"Seal of the custody log (line {lines}; the officer notes it): {log_seal(case_dir, lines)}\n")

    ok = bagit_validate(out)
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr.strip().endswith(f"{out} is valid")
    sums = sha256sum_check(out)
    assert sums.returncode == 0, sums.stdout
    every = [p for p in out.rglob("*") if p.is_file() and p.name not in ("SHA256SUMS", "SHA256SUMS.sig")]
    assert sums.stdout.count(": OK\n") == len(sums.stdout.splitlines()) == len(every)
    # only the user may read what was written (0600 files, 0700 folders)
    assert {p.stat().st_mode & 0o777 for p in out.rglob("*")} == {0o600, 0o700} and out.stat().st_mode & 0o777 == 0o700
    signed = openssl_verify(out)
    assert signed.returncode == 0 and signed.stdout.strip() == "Signature Verified Successfully"
    # the fingerprint an officer computes with openssl is the one export printed
    raw = subprocess.run(["openssl", "pkey", "-pubin", "-in", out / "public_key.pem", "-outform", "DER"],
                         capture_output=True, check=True).stdout[-32:]
    assert hashlib.sha256(raw).hexdigest()[:32].upper() == fingerprint.replace(" ", "")
    assert (out / "public_key_fingerprint.txt").read_text() == fingerprint + "\n"

    code, problems = verify(ingest, out)
    assert (code, problems) == (0, [])


def test_bundle_contents(bundle, ingest, case_dir):
    out, _ = bundle
    data = out / "data"
    records = ingest.json("list", "--json")
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["format"] == "ingest-bundle/1" and manifest["selection"] is None
    assert manifest["case"]["name"] == "Test case" and manifest["case"]["operator"] == "Tester"
    assert [r["id"] for r in manifest["records"]] == [r["id"] for r in records]
    assert manifest["counts"] == {"records": len(records), "originals": len(list((data / "originals").iterdir())),
                                  "derived": len(list((data / "derived").iterdir()))}
    for record in manifest["records"]:
        copy = data / record["file"]
        assert sha256(copy) == record["original"]["sha256"]
        assert copy.name.split("_", 1)[0] in {r["id"] for r in records}
        for derived in record["derived"]:
            assert (data / derived["file"]).exists()
    names = sorted(p.name for p in (data / "originals").iterdir())
    letter = next(r for r in records if r["original"]["filename"] == "letter-left-at-door.txt")
    assert f"{letter['id']}_letter-left-at-door.txt" in names
    voice = next(r for r in records if r["original"]["filename"] == "doorbell recording (1).m4a")
    assert f"{voice['id']}_doorbell_recording_1_.m4a" in names
    assert any(p.name.endswith(".txt") for p in (data / "derived").iterdir())      # the OCR text
    # the store's copies are untouched and still read-only
    assert (case_dir / "objects" / letter["original"]["blake3"][:2] / letter["original"]["blake3"]).stat().st_mode & 0o222 == 0
    # the custody log: the case's, up to the export, each line in its public form; the export's own
    # line follows in the case once the bundle is complete, naming the signed list and the seal
    bundled = (data / "custody.jsonl").read_bytes().splitlines()
    case_log = (case_dir / "custody.jsonl").read_bytes().splitlines()
    assert bundled == [public_line(line) for line in case_log[:-1]]
    assert all(b'"host"' not in line for line in bundled) and all(b'"host"' in line for line in case_log)
    export = json.loads(case_log[-1])
    assert export["action"] == "export"
    assert export["detail"]["sha256sums_sha256"] == sha256(out / "SHA256SUMS")
    assert export["detail"]["records"] == len(records)
    assert export["detail"]["seal"] == log_seal(case_dir, len(bundled)) == manifest["custody"]["seal"]
    csv_lines = (data / "manifest.csv").read_text().splitlines()
    assert csv_lines[0].endswith(",corrected_by,file")
    report = (data / "report.html").read_text()
    assert all(f'id="r-{r["id"]}"' in report for r in records)
    readme = (out / "README.txt").read_text()
    fingerprint = key_fingerprint((case_dir / "public_key.pem").read_bytes())
    steps = ["openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig",
             "openssl pkey -pubin -in public_key.pem -outform DER | tail -c 32 | sha256sum",
             "sha256sum -c SHA256SUMS", "certutil -hashfile data\\manifest.json SHA256",
             "Get-FileHash -Algorithm SHA256 data\\manifest.json", "bagit.py --validate ."]
    assert [readme.index(step) for step in steps] == sorted(readme.index(step) for step in steps)   # in this order
    assert fingerprint in readme and export["detail"]["seal"] in readme
    assert "openssl ts -verify" not in readme           # no time-stamp was asked for


def test_changed_byte_in_an_original_is_caught_by_every_check(bundle, ingest):
    out, _ = bundle
    letter = next((out / "data" / "originals").glob("*_letter-left-at-door.txt"))
    name = f"data/originals/{letter.name}"
    before = sha256(letter)
    before512 = hashlib.sha512(letter.read_bytes()).hexdigest()
    letter.chmod(0o644)
    data = bytearray(letter.read_bytes())
    data[0] ^= 0x01
    letter.write_bytes(bytes(data))
    after, after512 = sha256(letter), hashlib.sha512(bytes(data)).hexdigest()
    record_id = letter.name.split("_", 1)[0]
    line = next(n for n, text in enumerate((out / "SHA256SUMS").read_text().splitlines(), 1) if text.endswith(name))

    code, problems = verify(ingest, out)
    assert code == 1
    assert problems == [
        f"SHA256SUMS line {line}: {name}: the file's SHA-256 is {after}, the list says {before}",
        f'bag: {name} sha256 validation failed: expected="{before}" found="{after}"',
        f'bag: {name} sha512 validation failed: expected="{before512}" found="{after512}"',
        f"record {record_id}: its original {name} has SHA-256 {after}, the manifest records {before}",
    ]
    assert bagit_validate(out).returncode == 1
    assert f'{name} sha256 validation failed: expected="{before}" found="{after}"' in bagit_validate(out).stderr
    sums = sha256sum_check(out)
    assert sums.returncode == 1 and f"{name}: FAILED\n" in sums.stdout
    assert openssl_verify(out).returncode == 0     # the list itself was not changed: its signature still holds


def test_deleted_file_is_caught_by_every_check(bundle, ingest):
    out, _ = bundle
    letter = next((out / "data" / "originals").glob("*_letter-left-at-door.txt"))
    name = f"data/originals/{letter.name}"
    size = letter.stat().st_size
    info = dict(line.split(": ", 1) for line in (out / "bag-info.txt").read_text().splitlines())
    total_bytes, total_files = map(int, info["Payload-Oxum"].split("."))
    line = next(n for n, text in enumerate((out / "SHA256SUMS").read_text().splitlines(), 1) if text.endswith(name))
    letter.unlink()

    code, problems = verify(ingest, out)
    assert code == 1
    assert problems == [
        f"SHA256SUMS line {line}: {name}: the file is missing",
        f"bag: Payload-Oxum validation failed. Expected {total_files} files and {total_bytes} bytes but found "
        f"{total_files - 1} files and {total_bytes - size} bytes",
        f"record {letter.name.split('_', 1)[0]}: its original {name} is missing",
    ]
    assert bagit_validate(out).returncode == 1
    sums = sha256sum_check(out)
    assert sums.returncode == 1 and f"{name}: FAILED open or read\n" in sums.stdout


def test_edited_manifest_line_is_caught_by_every_check(bundle, ingest):
    out, _ = bundle
    manifest = out / "data" / "manifest.json"
    before = sha256(manifest)
    lines = manifest.read_text().split("\n")
    number = next(n for n, text in enumerate(lines) if '"I know where you live now"' in text)
    lines[number] = lines[number].replace("I know where you live now", "I hope you are well today")  # same length
    manifest.write_text("\n".join(lines))
    after = sha256(manifest)
    sums_line = next(n for n, text in enumerate((out / "SHA256SUMS").read_text().splitlines(), 1)
                     if text.endswith("  data/manifest.json"))

    code, problems = verify(ingest, out)
    assert code == 1
    assert problems[0] == f"SHA256SUMS line {sums_line}: data/manifest.json: the file's SHA-256 is {after}, the list says {before}"
    assert problems[1] == f'bag: data/manifest.json sha256 validation failed: expected="{before}" found="{after}"'
    assert problems[2].startswith("bag: data/manifest.json sha512 validation failed: ")
    assert problems[3].startswith("manifest.csv row ") and problems[3].endswith(" of manifest.json")
    assert len(problems) == 4
    assert bagit_validate(out).returncode == 1
    sums = sha256sum_check(out)
    assert sums.returncode == 1 and "data/manifest.json: FAILED\n" in sums.stdout


def test_edited_bag_manifest_line_is_caught(bundle, ingest):
    out, _ = bundle
    bag_manifest = out / "manifest-sha256.txt"
    lines = bag_manifest.read_text().splitlines()
    name = lines[0].split("  ", 1)[1]
    lines[0] = "0" * 64 + "  " + name
    bag_manifest.write_text("\n".join(lines) + "\n")
    real = sha256(out / name)
    sums_line = next(n for n, text in enumerate((out / "SHA256SUMS").read_text().splitlines(), 1)
                     if text.endswith("  manifest-sha256.txt"))
    edited = sha256(bag_manifest)
    code, problems = verify(ingest, out)
    assert code == 1
    assert problems[0].startswith(f"SHA256SUMS line {sums_line}: manifest-sha256.txt: the file's SHA-256 is {edited}, "
                                  "the list says ")
    assert problems[1] == f'bag: {name} sha256 validation failed: expected="{"0" * 64}" found="{real}"'
    assert problems[2].startswith('bag: manifest-sha256.txt sha256 validation failed: expected="')
    assert problems[2].endswith(f'" found="{edited}"')
    assert problems[3].startswith('bag: manifest-sha256.txt sha512 validation failed: expected="')
    assert len(problems) == 4
    assert bagit_validate(out).returncode == 1
    sums = sha256sum_check(out)
    assert sums.returncode == 1 and "manifest-sha256.txt: FAILED\n" in sums.stdout


def test_edited_custody_line_is_caught(bundle, ingest):
    out, _ = bundle
    log = out / "data" / "custody.jsonl"
    lines = log.read_text().splitlines()
    lines[1] = lines[1].replace('"operator":"Tester"', '"operator":"Someone else"')
    log.write_text("\n".join(lines) + "\n")
    code, problems = verify(ingest, out)
    assert code == 1
    assert "custody line 3: does not follow from the line before it (hash chain broken: a line was edited, removed "\
           "or moved)" in problems


def test_zip_bundle(mixed_case, tmp_path):
    out = tmp_path / "bundle.zip"
    result = mixed_case("export", "--out", out)
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        assert "bundle/README.txt" in names and "bundle/data/manifest.json" in names
        archive.extractall(tmp_path / "unzipped")
    assert not list(tmp_path.glob(".ingest-export-*")), "the working folder is removed"
    assert bagit_validate(tmp_path / "unzipped" / "bundle").returncode == 0
    assert sha256sum_check(tmp_path / "unzipped" / "bundle").returncode == 0
    assert verify(mixed_case, out) == (0, [])

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(out) as source, zipfile.ZipFile(evil, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item))
        target.writestr("../escape.txt", b"x")
    code, problems = verify(mixed_case, evil)
    assert code == 1 and problems == ["zip member ../escape.txt: would be written outside the bundle; not extracted"]
    assert not (tmp_path / "escape.txt").exists()


def subset(ingest, tmp_path, name, *args):
    out = tmp_path / name
    result = ingest("export", "--out", out, *args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    assert bagit_validate(out).returncode == 0 and verify(ingest, out) == (0, [])
    return manifest


def test_subsets_carry_parents_and_children(mixed_case, tmp_path):
    records = {r["id"]: r for r in mixed_case.json("list", "--json")}
    sms = subset(mixed_case, tmp_path, "sms", "--kind", "sms")
    kinds = [r["kind"] for r in sms["records"]]
    assert sorted(kinds) == ["file", "sms", "sms", "sms"]           # the three messages and their backup file
    assert sms["selection"] == {"kinds": ["sms"]}
    assert sms["counts"] == {"records": 4, "originals": 1, "derived": 0}

    mixed_case("party", "add", "Mail", "--email", STALKER_MAIL)
    mail = subset(mixed_case, tmp_path, "mail", "--party", "Mail")
    assert [r["kind"] for r in mail["records"]] == ["email", "image"]  # the email and the photo attached to it
    assert mail["records"][1]["parent"] == mail["records"][0]["id"]

    note = subset(mixed_case, tmp_path, "note", "--kind", "note", "--since", "2024-02-18", "--until", "2024-02-19")
    assert [r["kind"] for r in note["records"]] == ["note", "file"]   # the note and its recording
    assert note["records"][1]["original"]["filename"] == "doorbell recording (1).m4a"
    assert note["records"][1]["parent"] == note["records"][0]["id"]
    assert all(r["id"] in records for r in note["records"])

    nothing = mixed_case("export", "--out", tmp_path / "nothing", "--kind", "call", "--party", "Mail")
    assert nothing.exit_code == 2
    assert nothing.stderr.strip() == ("ingest: No record matches kinds call; party Mail, so there is nothing "
                                      "to export. Check the filters with `ingest timeline` and the same options.")
    assert not (tmp_path / "nothing").exists()


def test_export_refuses_to_overwrite(mixed_case, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "something").write_text("keep me")
    result = mixed_case("export", "--out", out)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"ingest: {out} already exists. Choose a new name for the bundle; nothing is overwritten."
    assert (out / "something").read_text() == "keep me"


def test_verify_refuses_what_is_not_a_bundle(ingest, tmp_path):
    result = ingest("verify", tmp_path / "missing")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"ingest: There is no bundle at {tmp_path / 'missing'}. "
                                     "Give the folder or .zip that `ingest export` made.")
    result = ingest("verify", tmp_path)
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"ingest: {tmp_path} is not an ingest bundle (it has no bagit.txt). Give the folder "
                                     "or .zip that `ingest export` made; to check the case, run `ingest verify`.")


def test_missing_signing_key_is_one_line(ingest, case_dir, tmp_path):
    (case_dir / "signing_key.pem").unlink()
    result = ingest("export", "--out", tmp_path / "b")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("ingest: This case has no signing key, so its export cannot be signed. "
                                     "Restore signing_key.pem into the case folder from a backup of the case.")
    assert not (tmp_path / "b").exists()


def test_a_damaged_store_is_not_exported(ingest, case_dir, tmp_path):
    letter = tmp_path / "letter.txt"
    letter.write_text("I will be waiting.\n")
    ingest("run", "--source", "files", letter)
    record = ingest.json("list", "--json")[0]
    b3 = record["original"]["blake3"]
    stored = case_dir / "objects" / b3[:2] / b3
    stored.chmod(0o644)
    stored.write_text("I will not be waiting.\n")
    lines = (case_dir / "custody.jsonl").read_text()
    result = ingest("export", "--out", tmp_path / "bundle")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"ingest: The object {b3} in the case no longer matches its hash; nothing was "
                                     "exported. Run `ingest verify` to see what changed.")
    assert not (tmp_path / "bundle").exists()
    assert (case_dir / "custody.jsonl").read_text() == lines
