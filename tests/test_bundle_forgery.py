"""A bundle tampered with as an attacker would: every list regenerated, the custody chain recomputed,
a fresh key. Each forgery makes `ingest verify BUNDLE` exit 1 and a documented standard-tool step fail."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import bagit
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from store.custody import line_hash
from ingest.case import key_fingerprint
from ingest.model.records import canonical_json
from ingest.features.seal import seal_code

from test_export import bagit_validate, bundle, mixed_case, openssl_verify, sha256sum_check, verify  # noqa: F401

SIGNATURE_BROKEN = ("signature: SHA256SUMS.sig does not match SHA256SUMS: the list was changed after it was signed, "
                    "or signed with another key")


def relist(out: Path, key: Ed25519PrivateKey | None = None) -> None:
    """What a forger does after changing files: regenerate the BagIt manifests, tag manifests and
    Payload-Oxum, then SHA256SUMS; with `key`, sign the new list and put that key in the bundle."""
    for name in ("SHA256SUMS", "SHA256SUMS.sig"):
        (out / name).unlink()
    if key is not None:
        pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        (out / "public_key.pem").write_bytes(pem)
        (out / "public_key_fingerprint.txt").write_text(key_fingerprint(pem) + "\n")
    bagit.Bag(str(out)).save(manifests=True)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    sums = "".join(f"{hashlib.sha256((out / name).read_bytes()).hexdigest()}  {name}\n" for name in files)
    (out / "SHA256SUMS").write_text(sums)
    if key is not None:
        (out / "SHA256SUMS.sig").write_bytes(key.sign(sums.encode()))
    else:
        (out / "SHA256SUMS.sig").write_bytes(b"\0" * 64)    # the old signature cannot be kept valid: any will do


def rechain(log: Path, edit) -> tuple[int, str]:
    """Apply `edit` to every entry, recompute every line's `prev`; returns (lines, last hash)."""
    prev, lines = "0" * 64, []
    for raw in log.read_bytes().splitlines():
        entry = edit(json.loads(raw))
        entry["prev"] = prev
        line = canonical_json(entry).encode()
        prev = line_hash(line)
        lines.append(line)
    log.write_bytes(b"\n".join(lines) + b"\n")
    return len(lines), prev


def restate_log(out: Path, lines: int, head: str) -> None:
    """Make manifest.json state the rewritten log's length, head and seal (as a thorough forger would)."""
    manifest = out / "data" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["custody"] = {"lines": lines, "head": head, "seal": seal_code(lines, head)}
    manifest.write_text(json.dumps(data))


def assert_caught_by_openssl_only(out: Path) -> None:
    assert sha256sum_check(out).returncode == 0            # the regenerated list matches the files...
    assert bagit_validate(out).returncode == 0             # ...and so does the regenerated bag...
    signed = openssl_verify(out)                            # ...but the list's signature fails: README step 1
    assert signed.returncode == 1 and signed.stdout.strip() == "Signature Verification Failure"


@pytest.mark.parametrize("name, old, new, also", [
    ("data/report.html", "I know where you live now", "I hope you are well today", []),
    ("README.txt", "It must say \"Signature Verified Successfully\".", "It may say anything.", []),
    # ingest also recomputes the table from manifest.json
    ("data/manifest.csv", "I know where you live now", "I hope you are well today", ["manifest.csv row "]),
])
def test_an_edited_file_is_caught_with_or_without_new_lists(bundle, ingest, name, old, new, also):  # noqa: F811
    out, _ = bundle
    target = out / name
    target.write_text(target.read_text().replace(old, new, 1))
    assert new in target.read_text()

    sums = sha256sum_check(out)                             # lists left alone: README step 2 fails
    assert sums.returncode == 1 and f"{name}: FAILED\n" in sums.stdout
    code, problems = verify(ingest, out)
    assert code == 1 and problems[0].startswith("SHA256SUMS line ") and f"{name}: the file's SHA-256 is" in problems[0]

    relist(out)                                             # every list regenerated: README step 1 fails
    assert_caught_by_openssl_only(out)
    code, problems = verify(ingest, out)
    assert code == 1 and problems[0] == SIGNATURE_BROKEN
    assert [problem[:len(start)] for problem, start in zip(problems[1:], also)] == also and len(problems) == 1 + len(also)


def test_a_custody_line_edited_and_the_chain_recomputed(bundle, ingest):  # noqa: F811
    out, _ = bundle
    log = out / "data" / "custody.jsonl"
    lines, head = rechain(log, lambda e: dict(e, operator="Someone else") if e["seq"] == 2 else e)
    relist(out)
    assert_caught_by_openssl_only(out)
    code, problems = verify(ingest, out)
    assert code == 1
    assert problems[0] == SIGNATURE_BROKEN
    assert problems[1].startswith(f"custody log: has {lines} lines ending in {head}, but manifest.json states {lines} "
                                  "lines ending in ")
    assert len(problems) == 2


def test_an_original_altered_with_its_hashes_regenerated(bundle, ingest):  # noqa: F811
    out, _ = bundle
    letter = next((out / "data" / "originals").glob("*_letter-left-at-door.txt"))
    before = hashlib.sha256(letter.read_bytes()).hexdigest()
    letter.write_text("Nothing happened.\n")
    after = hashlib.sha256(letter.read_bytes()).hexdigest()
    manifest = out / "data" / "manifest.json"
    manifest.write_text(manifest.read_text().replace(before, after))
    table = out / "data" / "manifest.csv"
    table.write_text(table.read_text().replace(before, after))
    relist(out)
    assert_caught_by_openssl_only(out)
    code, problems = verify(ingest, out)
    assert (code, problems) == (1, [SIGNATURE_BROKEN])


def test_a_fresh_key_is_caught_by_the_fingerprint(bundle, ingest, case_dir):  # noqa: F811
    out, _ = bundle
    real = key_fingerprint((case_dir / "public_key.pem").read_bytes())
    forger = Ed25519PrivateKey.generate()
    report = out / "data" / "report.html"
    report.write_text(report.read_text().replace("I know where you live now", "I hope you are well today"))
    relist(out, forger)
    # every tool passes: only the key differs
    assert sha256sum_check(out).returncode == 0 and bagit_validate(out).returncode == 0
    assert openssl_verify(out).returncode == 0
    fake = key_fingerprint((out / "public_key.pem").read_bytes())
    # README step 1: the fingerprint computed with openssl is not the one the victim reads out
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", out / "public_key.pem", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    assert hashlib.sha256(der[-32:]).hexdigest()[:32].upper() != real.replace(" ", "")

    # the log's init line still names the case's real key
    code, problems = verify(ingest, out)
    assert (code, problems) == (1, [f"custody line 1: names the case's key as {real}, but the bundle is signed by {fake}"])

    # a thorough forger rewrites the init line too and recomputes the chain: only the fingerprint catches it
    lines, head = rechain(out / "data" / "custody.jsonl",
                          lambda e: dict(e, detail=dict(e["detail"], public_key_fingerprint=fake)) if e["seq"] == 1 else e)
    restate_log(out, lines, head)
    relist(out, forger)
    assert verify(ingest, out) == (0, [])
    result = ingest("verify", out, "--fingerprint", real)
    assert result.exit_code == 1
    assert f"PROBLEM signature: the bundle is signed by the key {fake}, not by {real}, the key you were given" \
        in result.stdout.splitlines()
    assert ingest("verify", out, "--fingerprint", fake.lower().replace(" ", "")).exit_code == 0
    bad = ingest("verify", out, "--fingerprint", "1234")
    assert bad.exit_code == 2 and bad.stderr.startswith("ingest: '1234' is not a key fingerprint.")


def test_the_untouched_bundle_passes_with_its_fingerprint(bundle, ingest, case_dir):  # noqa: F811
    out, _ = bundle
    real = key_fingerprint((case_dir / "public_key.pem").read_bytes())
    result = ingest("verify", out, "--fingerprint", real)
    assert result.exit_code == 0, result.output
