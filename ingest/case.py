"""A case: one folder holding the evidence store, the index and the custody log.

    CASE/case.toml  CASE/objects/  CASE/index.sqlite  CASE/custody.jsonl
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import os
import re
import secrets
import socket
import sqlite3
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs

from store.custody import PRIVATE, Checkpoint, CustodyLog, line_hash
from store.index import Index
from store.objects import ObjectStore

from ingest import TOOL
from ingest.kit.phones import known_region
from ingest.model.errors import CaseError, StorageFailed, UsageError
from ingest.model.privacy import scrub
from ingest.model.times import iso_utc, utc_now

CONFIG = "case.toml"
SIGNING_KEY = "signing_key.pem"
PUBLIC_KEY = "public_key.pem"
LOCK_WAIT_S = 30
CASE_ID = "case_init_line"      # index meta: BLAKE3 of custody line 1, tying the index to its case


@dataclass(frozen=True)
class CaseConfig:
    name: str
    timezone: str
    region: str
    operator: str
    created_at: str
    initials: str = ""      # the producer's initials in exhibit marks (SP/1); empty: from `operator`

    def to_toml(self) -> str:
        lines = ["# ingest case settings. Times without a zone are read in `timezone`;",
                 "# phone numbers without a country code are read for `region`."]
        for key, value in vars(self).items():
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'{key} = "{escaped}"')
        return "\n".join(lines) + "\n"


def default_case_dir() -> Path:
    return Path(platformdirs.user_data_dir("ingest")) / "case"


def resolve_case_dir(explicit: str | os.PathLike | None) -> Path:
    """--case DIR, then $INGEST_CASE, then ./ when it is a case, then the user data dir."""
    if explicit:
        return Path(explicit)
    if os.environ.get("INGEST_CASE"):
        return Path(os.environ["INGEST_CASE"])
    if (Path.cwd() / CONFIG).exists():
        return Path.cwd()
    return default_case_dir()


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"{name!r} is not a known time zone.",
                         hint="Use a name like Europe/London or America/New_York.") from None
    return name


def initials_of(name: str) -> str:
    """"Sarah Parker" -> "SP"; a one-word user name gives its first letter."""
    words = re.findall(r"[^\W\d_]+", name)
    return "".join(word[0] for word in words[:4]).upper() or "EX"


def check_initials(text: str) -> str:
    initials = text.strip().upper()
    if not re.fullmatch(r"[^\W\d_]{1,6}", initials):
        raise UsageError(f"{text!r} cannot be used as initials in exhibit marks.",
                         hint="Give 1 to 6 letters, e.g. --initials SP.")
    return initials


def check_region(code: str) -> str:
    code = code.upper()
    if not known_region(code):
        raise UsageError(f"{code!r} is not a known phone region.", hint="Use a two-letter country code like GB or US.")
    return code


class Case:
    def __init__(self, root: Path, config: CaseConfig, *, writable: bool):
        self.root = root
        self.config = config
        self.writable = writable
        self.objects = ObjectStore(root / "objects")
        self.custody = CustodyLog(root / "custody.jsonl")
        self.host = socket.gethostname()
        self._lock_fd: int | None = None
        if writable:
            self._lock()
        self.index = Index(root / "index.sqlite", readonly=not writable and (root / "index.sqlite").exists())
        self.recovered: list[str] = []
        self.unlogged: list[str] = []    # actions a read-only case could not write to its custody log
        self.index_problem = self._check_index(adopt=writable)
        self.custody_broken = self.index_problem is not None
        if writable and not self.custody_broken:
            self._recover()

    # creating and opening ----------------------------------------------
    @classmethod
    def init(cls, root: Path, *, name: str | None = None, timezone: str = "Europe/London", region: str = "GB",
             operator: str | None = None, initials: str | None = None) -> "Case":
        root = Path(root)
        if (root / CONFIG).exists():
            raise CaseError(f"{root} is already a case.", hint="Use it as it is, or choose another folder.")
        if root.exists() and not root.is_dir():
            raise CaseError(f"{root} exists and is not a folder.")
        if root.exists() and any(root.iterdir()):
            raise CaseError(f"{root} is not empty.", hint="Choose a new or empty folder for the case.")
        operator = operator or _whoami()
        config = CaseConfig(name=name or root.resolve().name, timezone=check_timezone(timezone),
                            region=check_region(region), operator=operator,
                            created_at=iso_utc(utc_now()), initials=check_initials(initials or initials_of(operator)))
        try:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(root, 0o700)
            (root / "objects").mkdir(mode=0o700, exist_ok=True)
            _write_new(root / CONFIG, config.to_toml().encode(), 0o600)
            public = _make_signing_key(root)
        except OSError as error:
            raise CaseError(f"Cannot create the case in {root}: {error.strerror or error}.",
                            hint="Choose a folder you can write to.") from None
        case = cls(root, config, writable=True)
        case.log_now("init", {}, {"name": config.name, "timezone": config.timezone, "region": config.region,
                                   "initials": config.initials, "public_key_fingerprint": public})
        case._check_index(adopt=True)
        return case

    @classmethod
    def open(cls, root: Path, *, writable: bool = True, read_only_ok: bool = False) -> "Case":
        """Open a case. `read_only_ok`: a command that only reads (and would log that it looked)
        still works on a write-blocked copy, opened read-only, and says it could not log itself."""
        root = Path(root)
        config_path = root / CONFIG
        if not root.exists():
            raise CaseError(f"There is no case at {root}.", hint=f"Create one with `ingest init {root}`.")
        if not config_path.exists():
            raise CaseError(f"{root} is not an ingest case (it has no {CONFIG}).",
                            hint=f"Create one with `ingest init DIR`, or point --case at an existing case.")
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
            optional = {"initials"}     # cases made before these settings existed read without them
            config = CaseConfig(**{key: str(data[key]) for key in CaseConfig.__dataclass_fields__
                                   if key not in optional or key in data})
        except (KeyError, TypeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise CaseError(f"{config_path} cannot be read ({error}).", hint="Restore it from the original case.") from None
        except PermissionError:
            raise CaseError(f"No permission to read {config_path}.") from None
        if writable and not os.access(root, os.W_OK):
            if not read_only_ok:
                raise CaseError(f"The case folder {root} is read-only (a write-blocked copy?), so nothing can be "
                                "added to it.", hint="list, show, search, timeline, log, verify, report and export "
                                                     "work on it; add evidence to the original case.")
            writable = False
        try:
            return cls(root, config, writable=writable)
        except PermissionError:
            raise CaseError(f"No permission to use the case folder {root}.",
                            hint="Run ingest as the user who created the case.") from None

    def close(self) -> None:
        self.index.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _lock(self) -> None:
        """One writer at a time: an OS lock on the case folder itself, which exists as long as the
        case does (a lock file could be deleted, letting a second writer fork the custody log)."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise CaseError("Another ingest is working on this case.",
                                    hint="Wait for it to finish (or stop `ingest watch`), then try again.") from None
                time.sleep(0.2)
        self._lock_fd = fd

    # crash recovery ------------------------------------------------------
    def custody_checkpoint(self) -> Checkpoint:
        lines, head, size, prefix = self.index.custody_checkpoint()
        return Checkpoint(lines, head or "", size, prefix)

    def _check_index(self, *, adopt: bool) -> str | None:
        """Is index.sqlite this case's own? It names the hash of the log's first line (the `init`
        line); a missing index (made afresh, empty) or another case's does not. An index from before
        this check names nothing and is adopted when it has committed lines."""
        try:
            with open(self.custody.path, "rb") as log:
                first = log.readline()
        except FileNotFoundError:
            return None
        if not first:
            return None
        committed, _head = self.index.custody_tail()
        named = self.index.get_meta(CASE_ID)
        if named is None and committed == 0:
            return ("index.sqlite is missing or was replaced: it holds nothing, but the custody log has lines; "
                    "restore it from a backup of the case")
        if named is None:
            if adopt:
                with self.index.transaction():
                    self.index.set_meta(CASE_ID, line_hash(first))
            return None
        if named != line_hash(first):
            return "index.sqlite belongs to another case (it names another init line); restore this case's own"
        return None

    def _recover(self) -> None:
        """Check the custody log before anything is appended, then tidy what a killed run left:
        temp files, and custody lines whose records never committed."""
        cut = self.custody.drop_partial_tail()
        committed = self.index.custody_tail()[0]
        if self.custody.resume(self.custody_checkpoint()):
            # Lines the index committed are missing or changed, or a later line does not follow
            # on: never write on top of that.
            self.custody_broken = True
            return
        if self.objects.clear_temp():
            self.recovered.append("removed unfinished temporary files from an interrupted run")
        count = self.custody.checkpoint().lines
        if count > committed:
            detail = {"uncommitted_lines": [committed + 1, count],
                      "explanation": "An earlier run stopped after writing these custody lines but before "
                                     "committing their records; a re-run acquires those items again."}
            if cut:
                detail["cut_partial_line_blake3"] = line_hash(cut)
            self.log_now("recover", {}, detail)
            self.recovered.append(f"custody lines {committed + 1}-{count} belonged to an interrupted run")

    # custody ---------------------------------------------------------------
    def custody_entry(self, action: str, subjects: dict, detail: dict) -> dict:
        """A custody line: what anyone may read, plus a private block (host name, full local paths)
        that leaves the case only as its hash (see store/custody.py)."""
        shown = scrub(detail)
        private = {"nonce": secrets.token_hex(16), "host": self.host}
        if shown != detail:
            private["detail"] = detail
        return {"time": iso_utc(utc_now()), "operator": self.config.operator, "tool": TOOL, "action": action,
                "subjects": subjects, "detail": shown, PRIVATE: private}

    def commit(self, entries: list, work=None, *, index: Index | None = None) -> None:
        """The one way evidence becomes committed: objects durable; then, in one index transaction,
        the index rows (`work`), the custody lines (durable) and the new custody checkpoint.

        An entry may be a function of the index, called once the rows are in (a closing line that
        commits to the records an original now has). If anything fails, the index rolls back and
        the lines this commit wrote are cut again, so log and index still agree. `index`: another
        connection to this case's index to commit through (the pipeline's committing thread)."""
        self.require_intact()
        index = index or self.index
        self.objects.sync()
        before = self.custody.checkpoint()
        try:
            with index.transaction():
                if work is not None:
                    work(index)
                for entry in entries:
                    self.custody.append(entry(index) if callable(entry) else entry)
                if entries:
                    self.custody.sync()
                checkpoint = self.custody.checkpoint()
                index.set_custody_checkpoint(checkpoint.lines, checkpoint.head, checkpoint.size,
                                             checkpoint.prefix)
        except BaseException:
            self.custody.rewind(before)
            raise

    def storage_trouble(self, error: BaseException, *, writing: bool = True) -> str | None:
        """What `error` says about the disk holding the case: "gone", "full", "read-only",
        "failing", or None when it is not about the case's disk. `writing=False`: the error may
        also come from reading a source, so an I/O error there is the source's, not the case's."""
        if not self.root.is_dir():
            return "gone"
        if isinstance(error, FileNotFoundError) and error.filename and os.path.abspath(
                os.fsdecode(error.filename)).startswith(os.path.abspath(self.root) + os.sep):
            return "gone"     # a part of the case vanished under us: it is being removed
        if isinstance(error, sqlite3.Error):
            code = (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF
            return {13: "full", 8: "read-only", 10: "failing", 14: "failing"}.get(code)
        if isinstance(error, OSError):
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                return "full"
            if error.errno == errno.EROFS:
                return "read-only"
            if error.errno == errno.EIO and writing:
                return "failing"
        return None

    def storage_failed(self, trouble: str, kept: int, not_kept: int) -> StorageFailed:
        """The one line for a disk that stopped a run, saying what was kept and what was not."""
        counts = f"{kept} item(s) were kept, {not_kept} were not"
        if trouble == "gone":
            return StorageFailed(f"The case folder {self.root} was removed while ingest was working, so nothing more "
                                 "could be kept, and what it held is gone unless you have a copy.",
                                 hint="Restore the folder (or create a new case) and run again.")
        if trouble == "full":
            return StorageFailed(f"The disk holding the case is full: {counts}.",
                                 hint="Free some space and run again; what was kept is safe.")
        if trouble == "read-only":
            return StorageFailed(f"The disk holding the case became read-only: {counts}.",
                                 hint="Check the disk, then run again; what was kept is safe.")
        return StorageFailed(f"The disk holding the case reported an error (it may be failing): {counts}.",
                             hint="Copy the case to another disk and run again.")

    def require_intact(self) -> None:
        if self.index_problem:
            raise CaseError(f"This case cannot be changed: {self.index_problem}.",
                            hint="Nothing was written. Run `ingest verify` to see what else changed.")
        if self.custody_broken:
            raise CaseError("The custody log of this case does not match its index: it may have been altered.",
                            hint="Nothing was written. Run `ingest verify` to see what changed.")

    def log_now(self, action: str, subjects: dict, detail: dict) -> None:
        if not self.writable:
            self.unlogged.append(action)
            return
        self.commit([self.custody_entry(action, subjects, detail)])


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _make_signing_key(root: Path) -> str:
    """The case's Ed25519 key: it signs every export. Private key 0600, never leaves the case."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    _write_new(root / SIGNING_KEY, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()), 0o600)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_new(root / PUBLIC_KEY, public, 0o644)
    return key_fingerprint(public)


def key_fingerprint(public_pem: bytes) -> str:
    """SHA-256 of the raw public key, grouped for reading aloud."""
    import hashlib

    from cryptography.hazmat.primitives import serialization

    raw = serialization.load_pem_public_key(public_pem).public_bytes(serialization.Encoding.Raw,
                                                                    serialization.PublicFormat.Raw)
    digest = hashlib.sha256(raw).hexdigest().upper()
    return " ".join(digest[i:i + 4] for i in range(0, 32, 4))
