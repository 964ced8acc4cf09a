"""`ingest export` and `ingest verify BUNDLE`: the bundle handed to an investigator.

    export_bundle(case, out_path, kinds=..., since=..., until=..., party=...) -> ExportResult
    verify_bundle(path) -> Verification

The bundle is a BagIt bag (made with the `bagit` package, SHA-256 and SHA-512
manifests) that an officer can check with standard tools alone:

    BUNDLE/
      README.txt                 how to check it all, in plain language
      SHA256SUMS                 `sha256sum -c SHA256SUMS` (every file but itself and the tag manifests)
      bagit.txt  bag-info.txt  manifest-sha256.txt  manifest-sha512.txt  tagmanifest-*.txt
      data/
        manifest.json            every exported record (the schema of DESIGN.md) plus its file in the bundle
        manifest.json.sig        Ed25519 signature over manifest.json by the case's key
        public_key.pem           that key's public half; public_key_fingerprint.txt its fingerprint
        manifest.csv             the same records for a spreadsheet
        custody.jsonl            the case's custody log, ending with this export
        report.html              the report of the exported records
        originals/<record id>_<name>   copies of the originals (the store's copies are never moved)
        derived/<blake3>.<ext>   OCR text and thumbnails made from them

Records are streamed from the index and originals copied one at a time, so
memory stays flat; only the Ed25519 signature reads manifest.json whole
(Ed25519 has no streaming form), through a read-only memory map.
"""

from __future__ import annotations

import csv
import hashlib
import json
import mimetypes
import mmap
import os
import re
import shutil
import tempfile
import zipfile
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import bagit
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from store.custody import CustodyLog
from store.objects import hash_stream

from ingest import TOOL
from ingest.case import PUBLIC_KEY, SIGNING_KEY, Case, key_fingerprint
from ingest.model.errors import CaseError, UsageError
from ingest.pipeline import Progress
from ingest.features.report import render_report
from ingest.features.parties import values_of
from ingest.features.timeline import CSV_COLUMNS, Scope, csv_row
from ingest.model.times import iso_utc, utc_now
from ingest.features.verify import Problem, Verification

FORMAT = "ingest-bundle/1"
SUMS = "SHA256SUMS"
README = "README.txt"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
FINGERPRINT_FILE = "public_key_fingerprint.txt"
CHECKSUMS = ["sha256", "sha512"]
SELECTION_TABLE = "export_ids"
FILES_TABLE = "export_files"      # blake3 -> its path in the bag, for copying each object once
NAME_LIMIT = 80


@dataclass
class ExportResult:
    path: Path
    records: int
    files: int
    fingerprint: str
    manifest_sha256: str


def quiet(_description: str):
    """The default progress: nobody is watching."""
    return nullcontext(Progress())


# --- export ---------------------------------------------------------------------------
def export_bundle(case: Case, out_path: Path, *, kinds: list[str] | None = None, since: str | None = None,
                  until: str | None = None, party: list[str] | None = None, progress_factory=None) -> ExportResult:
    """Write the bundle to `out_path` (a new folder, or a name ending in .zip).

    With kinds/since/until/party (party names) only the matching records are exported, each
    with its parent (up to the top) and its children (down to the bottom); a party's WhatsApp
    chats go whole, so both sides of each conversation are there."""
    out_path = Path(out_path)
    as_zip = out_path.suffix.lower() == ".zip"
    case.require_intact()       # never hand over a case whose log does not match its index
    _check_destination(out_path)
    key = _signing_key(case)
    public_pem = (case.root / PUBLIC_KEY).read_bytes()
    fingerprint = key_fingerprint(public_pem)
    selection = {name: value for name, value in (("kinds", kinds or None), ("since", since), ("until", until),
                                                 ("party", list(party or []))) if value}
    scope = _select(case, kinds, since, until, party) if selection else Scope(case)
    if selection and not scope.count():
        case.index.drop_temporary(SELECTION_TABLE)
        raise UsageError(f"No record matches {_describe(selection)}, so there is nothing to export.",
                         hint="Check the filters with `ingest timeline` and the same options.")
    work = Path(tempfile.mkdtemp(prefix=".ingest-export-", dir=out_path.parent)) if as_zip else None
    bag = work / out_path.stem if as_zip else out_path
    bag.mkdir(mode=0o700)
    logged = False
    exported_at = iso_utc(utc_now())
    try:
        with (progress_factory or quiet)("Exporting") as progress:
            progress.total(scope.count())
            records, files = _write_records(case, scope, bag, selection, fingerprint, exported_at, progress)
        manifest = bag / MANIFEST
        with open(manifest, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            (bag / SIGNATURE).write_bytes(key.sign(view))
            manifest_sha256 = hashlib.sha256(view).hexdigest()
        (bag / PUBLIC_KEY).write_bytes(public_pem)
        (bag / FINGERPRINT_FILE).write_text(fingerprint + "\n", encoding="utf-8")
        case.log_now("export", {}, {"out": str(out_path), "records": records, "files": files,
                                    "manifest_sha256": manifest_sha256, "public_key_fingerprint": fingerprint,
                                    "selection": selection})
        logged = True
        shutil.copyfile(case.custody.path, bag / "custody.jsonl")
        render_report(scope, bag / "report.html",
                      bundle={"exported_at": exported_at, "filters": _describe(selection)})
        bagit.make_bag(str(bag), bag_info=_bag_info(case, records, files, selection), checksums=CHECKSUMS)
        (bag / README).write_text(readme(case, out_path.stem if as_zip else out_path.name, records, files,
                                         fingerprint, selection, exported_at), encoding="utf-8")
        _write_sums(bag)
        bagit.Bag(str(bag)).save()    # tag manifests now cover README.txt and SHA256SUMS too
        if as_zip:
            _zip(bag, out_path)
    except BaseException as error:
        shutil.rmtree(work or bag, ignore_errors=True)
        if logged and not isinstance(error, KeyboardInterrupt):
            case.log_now("export_failed", {}, {"out": str(out_path), "reason": f"{type(error).__name__}: {error}"})
        raise
    finally:
        case.index.drop_temporary(SELECTION_TABLE)
        case.index.drop_temporary(FILES_TABLE)
    if work:
        shutil.rmtree(work, ignore_errors=True)
    return ExportResult(out_path, records, files, fingerprint, manifest_sha256)


def _check_destination(out_path: Path) -> None:
    if out_path.exists() and (out_path.suffix.lower() == ".zip" or not out_path.is_dir() or any(out_path.iterdir())):
        raise UsageError(f"{out_path} already exists.", hint="Choose a new name for the bundle; nothing is overwritten.")
    if out_path.is_dir():
        out_path.rmdir()     # an empty folder named by the user: the bag is made in its place
    if not out_path.parent.is_dir():
        raise UsageError(f"The folder {out_path.parent} does not exist.", hint="Create it first, or choose another place.")
    if not os.access(out_path.parent, os.W_OK):
        raise UsageError(f"Cannot write in {out_path.parent}.", hint="Choose a folder you can write to.")


def _signing_key(case: Case):
    try:
        return serialization.load_pem_private_key((case.root / SIGNING_KEY).read_bytes(), password=None)
    except FileNotFoundError:
        raise CaseError("This case has no signing key, so its export cannot be signed.",
                        hint=f"Restore {SIGNING_KEY} into the case folder from a backup of the case.") from None
    except (OSError, ValueError) as error:
        raise CaseError(f"The case's signing key cannot be read ({error}).",
                        hint=f"Restore {SIGNING_KEY} from a backup of the case.") from None


def _select(case: Case, kinds, since, until, party) -> Scope:
    """Put the ids of the matching records, their children and their parents into a temp table."""
    case.index.select_with_family(SELECTION_TABLE, kinds=kinds, since=since, until=until,
                                  identifiers=values_of(case, party) if party else None)
    return Scope(case, SELECTION_TABLE)


def _write_records(case: Case, scope: Scope, bag: Path, selection: dict, fingerprint: str, exported_at: str,
                   progress) -> tuple[int, int]:
    """Stream manifest.json and manifest.csv, copying each original (and derived artifact) once."""
    copier = _Copier(case, bag)
    header = {"format": FORMAT, "tool": TOOL, "exported_at": exported_at,
              "case": {"name": case.config.name, "timezone": case.config.timezone, "region": case.config.region,
                       "operator": case.config.operator, "created_at": case.config.created_at},
              "selection": selection or None, "public_key_fingerprint": fingerprint}
    count = 0
    with open(bag / MANIFEST, "w", encoding="utf-8", newline="\n") as manifest, \
            open(bag / "manifest.csv", "w", encoding="utf-8", newline="") as table:
        writer = csv.writer(table)
        writer.writerow(CSV_COLUMNS + ["file"])
        manifest.write(json.dumps(header, ensure_ascii=False, sort_keys=True)[:-1] + ',\n"records": [')
        for record in scope.records():
            record["file"] = copier.original(record)
            for derived in record["derived"]:
                derived["file"] = copier.derived(derived["blake3"])
            manifest.write(",\n" if count else "\n")
            manifest.write(json.dumps(record, ensure_ascii=False, sort_keys=True))
            writer.writerow(csv_row(record) + [record["file"]])
            count += 1
            progress.advance(record["id"][:12])
        counts = {"records": count, "originals": copier.originals, "derived": copier.derived_files}
        manifest.write(f'\n],\n"counts": {json.dumps(counts)}}}\n')
    return count, copier.originals


class _Copier:
    """Copies each stored object into the bag once, checking the copy's hashes as it goes."""

    def __init__(self, case: Case, bag: Path):
        self.case = case
        self.bag = bag
        self.paths = case.index.temporary_map(FILES_TABLE)
        self.originals = 0
        self.derived_files = 0
        self.last: tuple[str, str] | None = None

    def original(self, record: dict) -> str:
        blake3_hex = record["original"]["blake3"]
        if self.last and self.last[0] == blake3_hex:
            return self.last[1]
        path = self.paths.get(blake3_hex)
        if path is None:
            owner = self.case.index.original_owner(blake3_hex) or record["id"]
            path = f"originals/{owner}_{sanitise(record['original']['filename'])}"
            self._copy(blake3_hex, path, record["original"]["sha256"])
            self.originals += 1
        self.last = (blake3_hex, path)
        return path

    def derived(self, blake3_hex: str) -> str:
        path = self.paths.get(blake3_hex)
        if path is None:
            row = self.case.index.object(blake3_hex)
            media = row["media_type"] if row else None
            path = f"derived/{blake3_hex}{extension(media)}"
            self._copy(blake3_hex, path, row["sha256"] if row else None)
            self.derived_files += 1
        return path

    def _copy(self, blake3_hex: str, relative: str, sha256: str | None) -> None:
        target = self.bag / relative
        target.parent.mkdir(exist_ok=True)
        try:
            with open(self.case.objects.path(blake3_hex), "rb") as source, open(target, "xb") as sink:
                digest = hash_stream(source, sink)
        except FileNotFoundError:
            raise CaseError(f"The object {blake3_hex} is missing from the case, so it cannot be exported.",
                            hint="Run `ingest verify` to see what is missing.") from None
        if digest.blake3 != blake3_hex or (sha256 and digest.sha256 != sha256):
            raise CaseError(f"The object {blake3_hex} in the case no longer matches its hash; nothing was exported.",
                            hint="Run `ingest verify` to see what changed.")
        self.paths.put(blake3_hex, relative)


def sanitise(filename: str | None) -> str:
    """A name safe on every system: ASCII letters, digits, dot, dash, underscore; no leading dot."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePosixPath(filename or "").name).strip("._") or "original"
    if len(name) > NAME_LIMIT:
        stem, dot, suffix = name.rpartition(".")
        name = (stem[: NAME_LIMIT - len(suffix) - 1] + "." + suffix) if dot and len(suffix) <= 10 else name[:NAME_LIMIT]
    return name


def extension(media_type: str | None) -> str:
    """A file name ending for a derived artifact, so it opens with the right program."""
    if not media_type:
        return ""
    base = media_type.split(";")[0].strip()
    return {"text/tab-separated-values": ".tsv"}.get(base) or mimetypes.guess_extension(base) or ""


def _describe(selection: dict) -> str:
    return "; ".join(f"{key} {', '.join(value) if isinstance(value, list) else value}"
                     for key, value in selection.items())


def _bag_info(case: Case, records: int, files: int, selection: dict) -> dict:
    info = {"Source-Organization": case.config.operator, "Contact-Name": case.config.operator,
            "External-Description": f"Evidence exported by {TOOL} from the case {case.config.name!r}: "
                                    f"{records} record(s), {files} original file(s).",
            "External-Identifier": case.config.name}
    if selection:
        info["Internal-Sender-Description"] = f"A selection of the case: {_describe(selection)}"
    return info


def _write_sums(bag: Path) -> None:
    """SHA256SUMS: the payload (taken from bagit's SHA-256 manifest, which just hashed it) and the tag
    files an officer reads first, in `sha256sum -c` format."""
    with open(bag / SUMS, "w", encoding="utf-8", newline="\n") as sums:
        with open(bag / "manifest-sha256.txt", encoding="utf-8") as payload:
            shutil.copyfileobj(payload, sums)
        for name in (README, "bagit.txt", "manifest-sha256.txt", "manifest-sha512.txt"):
            with open(bag / name, "rb") as handle:
                sums.write(f"{hashlib.file_digest(handle, 'sha256').hexdigest()}  {name}\n")


def _zip(bag: Path, out_path: Path) -> None:
    partial = out_path.with_name(out_path.name + ".part")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6, allowZip64=True) as archive:
            for folder, dirs, names in os.walk(bag):
                dirs.sort()
                for name in sorted(names):
                    path = Path(folder) / name
                    archive.write(path, f"{bag.name}/{path.relative_to(bag).as_posix()}")
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)


def readme(case: Case, folder: str, records: int, files: int, fingerprint: str, selection: dict,
           exported_at: str) -> str:
    scope = (f"This is a selection of the case ({_describe(selection)}), with every selected item's parent and\n"
             "attachments." if selection else "This is the whole case.")
    return f"""EVIDENCE BUNDLE: {case.config.name}
{'=' * (17 + len(case.config.name))}

Exported {exported_at} by {TOOL}, kept by {case.config.operator}.
{records} record(s) and {files} original file(s). {scope}

Times are given in UTC or with their offset; times the source wrote without a
zone were read as {case.config.timezone} and are marked "timezone_assumed".

SIGNING KEY FINGERPRINT (ask the person who gave you this bundle to read theirs
out; it must be the same):

    {fingerprint}


WHAT IS IN THE BUNDLE
---------------------
data/report.html      the report: open it in any web browser (it works offline)
data/manifest.json    every record: what happened, when (two times), who, and
                      the SHA-256 and BLAKE3 of its original file
data/manifest.csv     the same records, for a spreadsheet
data/originals/       the original files, byte for byte as they were kept,
                      named by record id and their original name
data/derived/         text read from images (OCR) and thumbnails
data/custody.jsonl    the chain-of-custody log: every action taken on the case,
                      each line naming the BLAKE3 hash of the line before; its
                      last line records this export
data/manifest.json.sig  Ed25519 signature over manifest.json
data/public_key.pem   the case's public key, to check that signature
SHA256SUMS            the SHA-256 of every file in the bundle
bagit.txt, bag-info.txt, manifest-*.txt, tagmanifest-*.txt
                      the BagIt (RFC 8493) packaging


HOW TO CHECK IT (standard tools; ingest itself is not needed)
---------------
If the bundle came as a .zip file, unzip it first; the commands below are run
in the folder {folder}/ (the one holding this README).

1. The BagIt manifests (SHA-256 and SHA-512 of every file):
       bagit.py --validate .
   (bagit.py comes with "pip install bagit".) It must say the bag is valid.

2. The checksum list:
       sha256sum -c SHA256SUMS
   Every line must say OK. (macOS: shasum -a 256 -c SHA256SUMS)

3. The signature over the manifest, with OpenSSL 3:
       cd data
       openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin -in manifest.json -sigfile manifest.json.sig
   It must say "Signature Verified Successfully".

4. That the key is the case's key: its fingerprint is the SHA-256 of the raw
   public key, which you can compute with
       openssl pkey -pubin -in public_key.pem -outform DER | tail -c 32 | sha256sum
   Its first 32 hex digits must equal the fingerprint above (shown in groups of four)
   and the fingerprint the person read out to you.

5. Each original against the manifest: the SHA-256 of a file in originals/,
       sha256sum originals/FILE
   must equal the "sha256" under "original" of its records in manifest.json
   (and the SHA-256 column of manifest.csv). Step 3 proves the manifest itself
   has not changed since it was signed.

6. The custody log: each line's "prev" is the BLAKE3 hash of the line before
   it, so a changed, removed or reordered line breaks the chain. To check
   line N (needs b3sum):
       sed -n 'Np' custody.jsonl | tr -d '\\n' | b3sum
   must equal the "prev" of line N+1.

With ingest installed, "ingest verify {folder}" makes all of these checks at
once and names every problem it finds.
"""


# --- verify ---------------------------------------------------------------------------
def verify_bundle(path: Path) -> Verification:
    """Check an exported bundle (a folder or .zip): the bag, SHA256SUMS, the signature, the
    manifest against the files, and the custody chain. Every problem is named."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"There is no bundle at {path}.", hint="Give the folder or .zip that `ingest export` made.")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise UsageError(f"{path} is neither a bundle folder nor a zip file.")
        with tempfile.TemporaryDirectory(prefix="ingest-verify-") as scratch:
            result = Verification()
            root = _unzip(path, Path(scratch), result)
            if root is not None:
                _verify_bag(root, result)
            return result
    if not (path / "bagit.txt").exists():
        raise UsageError(f"{path} is not an ingest bundle (it has no bagit.txt).",
                         hint="Give the folder or .zip that `ingest export` made; to check the case, run `ingest verify`.")
    result = Verification()
    _verify_bag(path, result)
    return result


def _unzip(path: Path, scratch: Path, result: Verification) -> Path | None:
    with zipfile.ZipFile(path) as archive:
        safe = []
        for member in archive.infolist():
            parts = PurePosixPath(member.filename).parts
            if member.filename.startswith("/") or ".." in parts or "\\" in member.filename:
                result.problems.append(Problem(f"zip member {member.filename}",
                                               "would be written outside the bundle; not extracted"))
            else:
                safe.append(member)
        archive.extractall(scratch, members=safe)
    tops = [entry for entry in scratch.iterdir() if (entry / "bagit.txt").exists()]
    if (scratch / "bagit.txt").exists():
        return scratch
    if len(tops) != 1:
        result.problems.append(Problem("zip", "does not hold exactly one bundle folder with a bagit.txt"))
        return None
    return tops[0]


def _verify_bag(root: Path, result: Verification) -> None:
    _check_bagit(root, result)
    hashes = _hash_files(root)
    _check_sums(root, hashes, result)
    manifest = _load_manifest(root, result)
    fingerprint = _check_signature(root, manifest, result)
    if manifest is not None:
        _check_manifest(root, manifest, hashes, result)
        _check_custody(root, manifest, hashes, result)
    if fingerprint:
        result.notes.append(f"Signed by the key with fingerprint {fingerprint}: ask the person who made the "
                            "bundle to read theirs out; it must be the same.")


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


def _check_sums(root: Path, hashes: dict[str, str], result: Verification) -> None:
    try:
        lines = (root / SUMS).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        result.problems.append(Problem(SUMS, "is missing"))
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
        if name.startswith("data/") and name not in listed:
            result.problems.append(Problem(f"file {name}", f"is not listed in {SUMS}"))


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


def _check_signature(root: Path, manifest: dict | None, result: Verification) -> str | None:
    data = root / "data"
    try:
        public_pem = (data / PUBLIC_KEY).read_bytes()
        signature = (data / SIGNATURE).read_bytes()
        signed = (data / MANIFEST).read_bytes()
    except FileNotFoundError as error:
        result.problems.append(Problem("signature", f"cannot be checked: {Path(error.filename).name} is missing"))
        return None
    try:
        key = serialization.load_pem_public_key(public_pem)
        fingerprint = key_fingerprint(public_pem)
        key.verify(signature, signed)
    except InvalidSignature:
        result.problems.append(Problem("signature", f"{SIGNATURE} does not match {MANIFEST}: the manifest was "
                                                    "changed after it was signed, or signed with another key"))
        return fingerprint
    except (ValueError, TypeError, AttributeError) as error:
        result.problems.append(Problem("signature", f"{PUBLIC_KEY} is not an Ed25519 public key ({error})"))
        return None
    if manifest is not None and manifest.get("public_key_fingerprint") != fingerprint:
        result.problems.append(Problem("signature", f"{PUBLIC_KEY} has fingerprint {fingerprint}, but the manifest "
                                                    f"names {manifest.get('public_key_fingerprint')}"))
    return fingerprint


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


def _check_custody(root: Path, manifest: dict, hashes: dict[str, str], result: Verification) -> None:
    log = root / "data" / "custody.jsonl"
    if not log.exists():
        result.problems.append(Problem("custody log", "is missing"))
        return
    kept, exports, last = set(), [], 0
    for number, entry, _digest, problems in CustodyLog(log).walk():
        last = number
        result.problems.extend(Problem(f"custody line {number}", problem) for problem in problems)
        if entry is None:
            continue
        kept.update((entry.get("subjects") or {}).get("objects", []))
        if entry.get("action") == "export":
            exports.append((entry.get("detail") or {}).get("manifest_sha256"))
    result.custody_lines = last
    if last == 0:
        result.problems.append(Problem("custody log", "is empty"))
        return
    manifest_sha256 = hashes.get(f"data/{MANIFEST}")
    if manifest_sha256 not in exports:
        result.problems.append(Problem("custody log", f"has no export line naming this {MANIFEST} "
                                                      f"(SHA-256 {manifest_sha256})"))
    for record in manifest["records"]:
        blake3_hex = (record.get("original") or {}).get("blake3") if isinstance(record, dict) else None
        if blake3_hex and blake3_hex not in kept:
            result.problems.append(Problem(f"record {record.get('id')}",
                                           f"its original {blake3_hex} is not named in the custody log"))
