"""`ingest verify BUNDLE`: check an exported bundle as an officer would, and more.

    verify_bundle(path, fingerprint=None, seal=None) -> Verification

In the README's order: the Ed25519 signature over SHA256SUMS (and, with
--fingerprint, that the key is the one the officer was told), every file
against that signed list (and no file outside it), the BagIt bag; then what
ingest can recompute: each record's original present with its hash, the
custody chain, the key named in the log's `init` line, the log's length and
seal as the manifest states them, and a time-stamp token's imprint.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import bagit
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from store.custody import CustodyLog

from ingest.case import PUBLIC_KEY, key_fingerprint
from ingest.model.errors import UsageError
from ingest.features.export import FORMAT, MANIFEST, SUMS, SUMS_SIGNATURE, SUMS_TOKEN
from ingest.features.seal import check_seal, seal_code
from ingest.features.timeline import CSV_COLUMNS, csv_row
from ingest.features.verify import Problem, Verification

UNLISTED = {SUMS, SUMS_SIGNATURE, SUMS_TOKEN}    # the list, and what is made over it


def normalise_fingerprint(text: str) -> str:
    return re.sub(r"[^0-9A-F]", "", text.upper())


def verify_bundle(path: Path, *, fingerprint: str | None = None, seal: str | None = None) -> Verification:
    """Check an exported bundle (a folder or .zip). Every problem is named."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"There is no bundle at {path}.", hint="Give the folder or .zip that `ingest export` made.")
    if fingerprint is not None and len(normalise_fingerprint(fingerprint)) != 32:
        raise UsageError(f"{fingerprint!r} is not a key fingerprint.",
                         hint="It is 32 letters and digits, usually in groups of four, as `ingest export` printed it.")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise UsageError(f"{path} is neither a bundle folder nor a zip file.")
        with tempfile.TemporaryDirectory(prefix="ingest-verify-") as scratch:
            result = Verification()
            root = _unzip(path, Path(scratch), result)
            if root is not None:
                _verify_bag(root, result, fingerprint, seal)
            return result
    if not (path / "bagit.txt").exists():
        raise UsageError(f"{path} is not an ingest bundle (it has no bagit.txt).",
                         hint="Give the folder or .zip that `ingest export` made; to check the case, run `ingest verify`.")
    result = Verification()
    _verify_bag(path, result, fingerprint, seal)
    return result


def _unzip(path: Path, scratch: Path, result: Verification) -> Path | None:
    """Unpack a zipped bundle to check it. A member that would land outside the folder is refused;
    a zip that claims more than the scratch disk holds (a zip bomb) is not unpacked at all."""
    try:
        with zipfile.ZipFile(path) as archive:
            safe = []
            for member in archive.infolist():
                parts = PurePosixPath(member.filename).parts
                if member.filename.startswith("/") or ".." in parts or "\\" in member.filename:
                    result.problems.append(Problem(f"zip member {member.filename}",
                                                   "would be written outside the bundle; not extracted"))
                else:
                    safe.append(member)
            needed = sum(member.file_size for member in safe)
            free = shutil.disk_usage(scratch).free
            if needed > free:
                result.problems.append(Problem("zip", f"says it unpacks to {needed} bytes, more than the {free} "
                                                      "free here to check it; not unpacked"))
                return None
            archive.extractall(scratch, members=safe)   # each member stops at its declared size
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as error:
        result.problems.append(Problem("zip", f"is damaged and cannot be unpacked ({error})"))
        return None
    tops = [entry for entry in scratch.iterdir() if (entry / "bagit.txt").exists()]
    if (scratch / "bagit.txt").exists():
        return scratch
    if len(tops) != 1:
        result.problems.append(Problem("zip", "does not hold exactly one bundle folder with a bagit.txt"))
        return None
    return tops[0]

def _check_bagit(root: Path, result: Verification) -> None:
    try:
        bagit.Bag(str(root)).validate(processes=1)
    except bagit.BagValidationError as error:
        # bagit reports in no fixed order; sorted, the same damage always reads the same
        details = sorted(str(detail) for detail in error.details) or [error.message]
        result.problems.extend(Problem("bag", detail) for detail in details)
    except bagit.BagError as error:
        result.problems.append(Problem("bag", f"cannot be read as a BagIt bag: {error}"))

def _hash_files(root: Path) -> dict[str, str]:
    """SHA-256 of every file in the bundle, by path relative to it, each file read once."""
    hashes = {}
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            with open(path, "rb") as handle:
                hashes[path.relative_to(root).as_posix()] = hashlib.file_digest(handle, "sha256").hexdigest()
    return hashes

def _load_manifest(root: Path, result: Verification) -> dict | None:
    try:
        with open(root / "data" / MANIFEST, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except FileNotFoundError:
        result.problems.append(Problem(MANIFEST, "is missing"))
        return None
    except (UnicodeDecodeError, ValueError) as error:
        result.problems.append(Problem(MANIFEST, f"cannot be read as JSON ({error})"))
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("records"), list):
        result.problems.append(Problem(MANIFEST, f"is not an {FORMAT} manifest"))
        return None
    return manifest

def _check_manifest(root: Path, manifest: dict, hashes: dict[str, str], result: Verification) -> None:
    named = set()
    records = manifest["records"]
    for record in records:
        result.records += 1
        rid = record.get("id", "?") if isinstance(record, dict) else "?"
        files = [(record.get("file"), record.get("original", {}).get("sha256"), "original")]
        files += [(item.get("file"), None, item.get("type", "derived")) for item in record.get("derived", [])]
        for relative, sha256, what in files:
            if not isinstance(relative, str) or _escapes(relative):
                result.problems.append(Problem(f"record {rid}", f"names its {what} as {relative!r}, not a file in the bundle"))
                continue
            name = f"data/{relative}"
            named.add(name)
            found = hashes.get(name)
            if found is None:
                result.problems.append(Problem(f"record {rid}", f"its {what} {name} is missing"))
            elif sha256 and found != sha256:
                result.problems.append(Problem(f"record {rid}",
                                               f"its {what} {name} has SHA-256 {found}, the manifest records {sha256}"))
    result.objects = len(named)
    for name in hashes:
        if name.startswith(("data/originals/", "data/derived/")) and name not in named:
            result.problems.append(Problem(f"file {name}", f"is not named by any record in {MANIFEST}"))
    counts = manifest.get("counts") or {}
    if counts.get("records") != len(records):
        result.problems.append(Problem(MANIFEST, f"says it holds {counts.get('records')} records but lists {len(records)}"))

def _escapes(relative: str) -> bool:
    parts = PurePosixPath(relative).parts
    return relative.startswith("/") or ".." in parts or not parts

def _verify_bag(root: Path, result: Verification, fingerprint: str | None, seal: str | None) -> None:
    key = _check_signature(root, result, fingerprint)
    hashes = _hash_files(root)
    _check_sums(root, hashes, result)
    _check_bagit(root, result)
    manifest = _load_manifest(root, result)
    if manifest is not None:
        _check_manifest(root, manifest, hashes, result)
        _check_table(root, manifest, result)
        _check_custody(root, manifest, key, result)
    if seal:
        check_seal(CustodyLog(root / "data" / "custody.jsonl"), seal, result)
    _check_token(root, result)
    if key:
        result.notes.append(f"Signed by the key with fingerprint {key}: ask the person who made the "
                            "bundle to read theirs out; it must be the same.")


def _check_signature(root: Path, result: Verification, wanted: str | None) -> str | None:
    """The signature over SHA256SUMS; returns the signing key's fingerprint."""
    try:
        public_pem = (root / PUBLIC_KEY).read_bytes()
        signature = (root / SUMS_SIGNATURE).read_bytes()
        signed = (root / SUMS).read_bytes()
    except FileNotFoundError as error:
        result.problems.append(Problem("signature", f"cannot be checked: {Path(error.filename).name} is missing"))
        return None
    try:
        key = serialization.load_pem_public_key(public_pem)
        fingerprint = key_fingerprint(public_pem)
        key.verify(signature, signed)
    except InvalidSignature:
        result.problems.append(Problem("signature", f"{SUMS_SIGNATURE} does not match {SUMS}: the list was "
                                                    "changed after it was signed, or signed with another key"))
    except (ValueError, TypeError, AttributeError) as error:
        result.problems.append(Problem("signature", f"{PUBLIC_KEY} is not an Ed25519 public key ({error})"))
        return None
    if wanted and normalise_fingerprint(wanted) != normalise_fingerprint(fingerprint):
        result.problems.append(Problem("signature", f"the bundle is signed by the key {fingerprint}, not by "
                                                    f"{wanted}, the key you were given"))
    return fingerprint


def _check_sums(root: Path, hashes: dict[str, str], result: Verification) -> None:
    try:
        lines = (root / SUMS).read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        result.problems.append(Problem(SUMS, "is missing or unreadable"))
        return
    listed = set()
    for number, line in enumerate(lines, 1):
        expected, sep, name = line.partition("  ")
        if not sep or not re.fullmatch(r"[0-9a-f]{64}", expected):
            result.problems.append(Problem(f"{SUMS} line {number}", "cannot be read (expected: SHA-256, two spaces, name)"))
            continue
        listed.add(name)
        found = hashes.get(name)
        if found is None:
            result.problems.append(Problem(f"{SUMS} line {number}", f"{name}: the file is missing"))
        elif found != expected:
            result.problems.append(Problem(f"{SUMS} line {number}",
                                           f"{name}: the file's SHA-256 is {found}, the list says {expected}"))
    for name in hashes:
        if name not in listed and name not in UNLISTED:
            result.problems.append(Problem(f"file {name}", f"is not listed in {SUMS}"))


def _check_custody(root: Path, manifest: dict, key: str | None, result: Verification) -> None:
    """The chain; the key the log's first line names; the log's length and seal as the manifest says."""
    log = root / "data" / "custody.jsonl"
    if not log.exists():
        result.problems.append(Problem("custody log", "is missing"))
        return
    kept, last, digest = set(), 0, None
    for number, entry, digest, problems in CustodyLog(log).walk():
        last = number
        result.problems.extend(Problem(f"custody line {number}", problem) for problem in problems)
        if entry is None:
            continue
        if number == 1:
            named = (entry.get("detail") or {}).get("public_key_fingerprint")
            if entry.get("action") != "init":
                result.problems.append(Problem("custody line 1", "is not the case's init line"))
            elif key and named != key:
                result.problems.append(Problem("custody line 1", f"names the case's key as {named}, but the bundle "
                                                                 f"is signed by {key}"))
        kept.update((entry.get("subjects") or {}).get("objects", []))
    result.custody_lines = last
    if last == 0:
        result.problems.append(Problem("custody log", "is empty"))
        return
    stated = manifest.get("custody") or {}
    if stated.get("lines") != last or stated.get("head") != digest or stated.get("seal") != seal_code(last, digest):
        result.problems.append(Problem("custody log", f"has {last} lines ending in {digest}, but {MANIFEST} states "
                                                      f"{stated.get('lines')} lines ending in {stated.get('head')}"))
    for record in manifest["records"]:
        blake3_hex = (record.get("original") or {}).get("blake3") if isinstance(record, dict) else None
        if blake3_hex and blake3_hex not in kept:
            result.problems.append(Problem(f"record {record.get('id')}",
                                           f"its original {blake3_hex} is not named in the custody log"))


def _check_table(root: Path, manifest: dict, result: Verification) -> None:
    """manifest.csv must say what manifest.json says, row for row (it is made from the same records)."""
    try:
        handle = open(root / "data" / "manifest.csv", encoding="utf-8", newline="")
    except FileNotFoundError:
        result.problems.append(Problem("manifest.csv", "is missing"))
        return
    with handle:
        rows = csv.reader(handle)
        if next(rows, None) != CSV_COLUMNS + ["file"]:
            result.problems.append(Problem("manifest.csv", "does not have the expected columns"))
            return
        for number, (record, row) in enumerate(itertools.zip_longest(manifest["records"], rows), 2):
            try:
                expected = None if record is None else [str(value) for value in csv_row(record) + [record["file"]]]
            except (KeyError, TypeError, AttributeError):
                expected = None     # a damaged record: already named by the manifest check
            if row != expected:
                result.problems.append(Problem(f"manifest.csv row {number}",
                                               f"does not match record {number - 1} of {MANIFEST}"))
                return


def _check_token(root: Path, result: Verification) -> None:
    """A time-stamp token must be over this SHA256SUMS. (Its signer is checked with the authority's
    certificate, which only the officer has: `openssl ts -verify`, as the README says.)"""
    token = root / SUMS_TOKEN
    if not token.exists():
        return
    from rfc3161_client import decode_timestamp_response

    try:
        info = decode_timestamp_response(token.read_bytes()).tst_info
        signed = (root / SUMS).read_bytes()
    except Exception as error:   # the decoder's errors and a missing list alike mean "no usable token"
        result.problems.append(Problem(SUMS_TOKEN, f"cannot be read as a time-stamp token ({error})"))
        return
    if info.message_imprint.message != hashlib.sha256(signed).digest():
        result.problems.append(Problem(SUMS_TOKEN, f"is a time-stamp for something other than this {SUMS}"))
    else:
        result.notes.append(f"{SUMS} was time-stamped at {info.gen_time:%Y-%m-%dT%H:%M:%SZ}; check the "
                            "authority's signature with `openssl ts -verify` (see README.txt).")
