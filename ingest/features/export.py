"""`ingest export`: the bundle handed to an investigator.

    export_bundle(case, out_path, kinds=..., since=..., until=..., party=..., tsa=...) -> ExportResult

The bundle is a BagIt bag (made with the `bagit` package, SHA-256 and SHA-512
manifests) that an officer checks with standard tools alone (ingest.features.bundle_readme):

    BUNDLE/
      README.txt                 how to check it all, in plain language
      SHA256SUMS                 the SHA-256 of every other file in the bundle (`sha256sum -c`)
      SHA256SUMS.sig             Ed25519 signature over SHA256SUMS by the case's key (`openssl pkeyutl -verify`)
      SHA256SUMS.tsr             with --tsa: an RFC 3161 time-stamp token over SHA256SUMS (`openssl ts -verify`)
      public_key.pem             the case's public key; public_key_fingerprint.txt its fingerprint
      bagit.txt  bag-info.txt  manifest-sha256.txt  manifest-sha512.txt  tagmanifest-*.txt
      data/
        manifest.json            every exported record (the schema of DESIGN.md) plus its file in the bundle
        manifest.csv             the same records for a spreadsheet
        custody.jsonl            the case's custody log up to this export (public lines: see store/custody.py)
        report.html              the report of the exported records
        originals/<record id>_<name>   copies of the originals (the store's copies are never moved)
        derived/<blake3>.<ext>   OCR text and thumbnails made from them

Signing the list rather than the manifest covers every file, and keeps memory
flat: every file is hashed streaming, and only the list (a line per file) is read
whole to sign it. Local paths and the host name stay out unless `include_paths`.

A bundle is built under a temporary name beside the output (`.ingest-export-PID-*`)
and renamed into place only when complete; what a killed export left is removed
by the next one. The `export` custody line is written once the bundle exists.
"""

from __future__ import annotations

import csv
import hashlib
import json
import mimetypes
import os
import re
import shutil
import tempfile
import zipfile
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import bagit
from cryptography.hazmat.primitives import serialization

from store.custody import public_line
from store.objects import hash_stream

from ingest import TOOL
from ingest.case import PUBLIC_KEY, SIGNING_KEY, Case, key_fingerprint
from ingest.model.errors import CaseError, UsageError
from ingest.model.privacy import scrub_record
from ingest.features.parties import values_of
from ingest.model.times import iso_utc, utc_now
from ingest.pipeline import Progress
from ingest.features.bundle_readme import describe_selection, readme
from ingest.features.report import render_report
from ingest.features.seal import seal_code
from ingest.features.timeline import CSV_COLUMNS, Scope, csv_row
from ingest.features.tsa import TsaError, timestamp

FORMAT = "ingest-bundle/1"
SUMS = "SHA256SUMS"
SUMS_SIGNATURE = "SHA256SUMS.sig"
SUMS_TOKEN = "SHA256SUMS.tsr"
README = "README.txt"
MANIFEST = "manifest.json"
FINGERPRINT_FILE = "public_key_fingerprint.txt"
CHECKSUMS = ["sha256", "sha512"]
SELECTION_TABLE = "export_ids"
FILES_TABLE = "export_files"      # blake3 -> its path in the bag, for copying each object once
NAME_LIMIT = 80
WORK_PREFIX = ".ingest-export-"


@dataclass
class ExportResult:
    path: Path
    records: int
    files: int
    fingerprint: str
    sums_sha256: str
    seal: str
    seal_line: int
    tsa_time: str | None = None
    tsa_problem: str | None = None
    removed_leftovers: int = 0


def quiet(_description: str):
    """The default progress: nobody is watching."""
    return nullcontext(Progress())


# --- export ---------------------------------------------------------------------------
def export_bundle(case: Case, out_path: Path, *, kinds: list[str] | None = None, since: str | None = None,
                  until: str | None = None, party: list[str] | None = None, include_paths: bool = False,
                  tsa: str | None = None, progress_factory=None) -> ExportResult:
    """Write the bundle to `out_path` (a new folder, or a name ending in .zip).

    With kinds/since/until/party (party names) only the matching records are exported, each
    with its parent (up to the top) and its children (down to the bottom); a party's WhatsApp
    chats go whole, so both sides of each conversation are there. With `tsa`, a time-stamping
    authority stamps SHA256SUMS; if it cannot, the bundle is made without."""
    out_path = Path(out_path)
    as_zip = out_path.suffix.lower() == ".zip"
    case.require_intact()       # never hand over a case whose log does not match its index
    _check_destination(out_path)
    removed = remove_leftovers(out_path.parent)
    key = _signing_key(case)
    public_pem = (case.root / PUBLIC_KEY).read_bytes()
    fingerprint = key_fingerprint(public_pem)
    selection = {name: value for name, value in (("kinds", kinds or None), ("since", since), ("until", until),
                                                 ("party", list(party or []))) if value}
    scope = _select(case, kinds, since, until, party) if selection else Scope(case)
    if selection and not scope.count():
        case.index.drop_temporary(SELECTION_TABLE)
        raise UsageError(f"No record matches {describe_selection(selection)}, so there is nothing to export.",
                         hint="Check the filters with `ingest timeline` and the same options.")
    name = out_path.stem if as_zip else out_path.name
    try:
        work = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}-", dir=out_path.parent))
    except PermissionError:
        raise UsageError(f"Cannot write in {out_path.parent}.", hint="Choose a folder you can write to.") from None
    bag = work / name
    bag.mkdir(mode=0o700)
    exported_at = iso_utc(utc_now())
    line, head = case.custody.tail()
    seal = seal_code(line, head)
    try:
        with (progress_factory or quiet)("Exporting") as progress:
            progress.total(scope.count())
            header = {"format": FORMAT, "tool": TOOL, "exported_at": exported_at,
                      "case": {"name": case.config.name, "timezone": case.config.timezone,
                               "region": case.config.region, "operator": case.config.operator,
                               "created_at": case.config.created_at},
                      "selection": selection or None, "public_key_fingerprint": fingerprint,
                      "custody": {"lines": line, "head": head, "seal": seal}}
            records, files = _write_records(case, scope, bag, header, include_paths, progress)
        _copy_custody(case, bag / "custody.jsonl", line, include_paths)
        render_report(scope, bag / "report.html", include_paths=include_paths,
                      bundle={"exported_at": exported_at, "filters": describe_selection(selection), "seal": seal})
        bagit.make_bag(str(bag), bag_info=_bag_info(case, records, files, selection), checksums=CHECKSUMS)
        _write_private(bag / PUBLIC_KEY, public_pem)
        _write_private(bag / FINGERPRINT_FILE, (fingerprint + "\n").encode())
        _write_private(bag / README, readme(case, name, records, files, fingerprint, selection, exported_at,
                                            seal=seal, seal_line=line, tsa=tsa).encode())
        bagit.Bag(str(bag)).save()    # the tag manifests now cover the README and the key too
        sums_sha256 = _write_sums(bag)
        _write_private(bag / SUMS_SIGNATURE, key.sign((bag / SUMS).read_bytes()))
        tsa_time = tsa_problem = None
        if tsa:
            try:
                stamp = timestamp(tsa, (bag / SUMS).read_bytes())
                _write_private(bag / SUMS_TOKEN, stamp.response)
                tsa_time = stamp.time
            except TsaError as error:
                tsa_problem = str(error)
        _make_private(bag)
        if as_zip:
            _zip(bag, work / out_path.name)
            os.replace(work / out_path.name, out_path)
        else:
            os.rename(bag, out_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        case.index.drop_temporary(SELECTION_TABLE)
        case.index.drop_temporary(FILES_TABLE)
    # Only now does the bundle exist: the log never names one that does not.
    case.log_now("export", {}, {"out": str(out_path), "records": records, "files": files,
                                "sha256sums_sha256": sums_sha256, "public_key_fingerprint": fingerprint,
                                "selection": selection, "seal": seal, "seal_line": line,
                                "include_paths": include_paths,
                                **({"tsa": tsa, "tsa_time": tsa_time} if tsa else {}),
                                **({"tsa_problem": tsa_problem} if tsa_problem else {})})
    return ExportResult(out_path, records, files, fingerprint, sums_sha256, seal, line, tsa_time, tsa_problem, removed)


def remove_leftovers(folder: Path) -> int:
    """Remove what a killed export left in `folder` (its temporary build folders); returns how many.
    A folder whose export is still running (its process alive) is left alone."""
    removed = 0
    for entry in folder.glob(f"{WORK_PREFIX}*"):
        pid = re.match(rf"{re.escape(WORK_PREFIX)}(\d+)-", entry.name)
        if pid and _alive(int(pid.group(1))):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(descriptor, "wb") as handle:
        handle.write(data)


def _make_private(bag: Path) -> None:
    """Only the user may read the bundle (0600 files, 0700 folders) until they hand it over."""
    for folder, dirs, names in os.walk(bag):
        os.chmod(folder, 0o700)
        for name in names:
            os.chmod(os.path.join(folder, name), 0o600)


def _copy_custody(case: Case, target: Path, lines: int, include_paths: bool) -> None:
    """The log's first `lines` lines; without `include_paths` each as its public form (no host
    name, no full paths), which chains and seals exactly as the line kept in the case."""
    with open(case.custody.path, "rb") as source, open(target, "xb") as sink:
        for number, raw in enumerate(source, 1):
            if number > lines:
                break
            sink.write(raw if include_paths else public_line(raw) + b"\n")


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


def _write_records(case: Case, scope: Scope, bag: Path, header: dict, include_paths: bool,
                   progress) -> tuple[int, int]:
    """Stream manifest.json and manifest.csv, copying each original (and derived artifact) once."""
    copier = _Copier(case, bag)
    count = 0
    with open(bag / MANIFEST, "w", encoding="utf-8", newline="\n") as manifest, \
            open(bag / "manifest.csv", "w", encoding="utf-8", newline="") as table:
        writer = csv.writer(table)
        writer.writerow(CSV_COLUMNS + ["file"])
        manifest.write(json.dumps(header, ensure_ascii=False, sort_keys=True)[:-1] + ',\n"records": [')
        for record in scope.records():
            record = record if include_paths else scrub_record(record)
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


def _bag_info(case: Case, records: int, files: int, selection: dict) -> dict:
    info = {"Source-Organization": case.config.operator, "Contact-Name": case.config.operator,
            "External-Description": f"Evidence exported by {TOOL} from the case {case.config.name!r}: "
                                    f"{records} record(s), {files} original file(s).",
            "External-Identifier": case.config.name}
    if selection:
        info["Internal-Sender-Description"] = f"A selection of the case: {describe_selection(selection)}"
    return info


def _write_sums(bag: Path) -> str:
    """SHA256SUMS, in `sha256sum -c` format: the payload (taken from bagit's SHA-256 manifest, which
    just hashed it), then every tag file. Returns the list's own SHA-256."""
    with open(bag / SUMS, "x", encoding="utf-8", newline="\n") as sums:
        with open(bag / "manifest-sha256.txt", encoding="utf-8") as payload:
            shutil.copyfileobj(payload, sums)
        for name in sorted(entry.name for entry in bag.iterdir() if entry.is_file() and entry.name != SUMS):
            with open(bag / name, "rb") as handle:
                sums.write(f"{hashlib.file_digest(handle, 'sha256').hexdigest()}  {name}\n")
    with open(bag / SUMS, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _zip(bag: Path, target: Path) -> None:
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(descriptor, "wb") as handle, \
            zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6, allowZip64=True) as archive:
        for folder, dirs, names in os.walk(bag):
            dirs.sort()
            for name in sorted(names):
                path = Path(folder) / name
                archive.write(path, f"{bag.name}/{path.relative_to(bag).as_posix()}")
