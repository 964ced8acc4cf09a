"""Write-once, content-addressed object store: `objects/<b3[:2]>/<b3>`, mode 0444."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import io
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator, NamedTuple

import blake3

from ingest.model.records import Digest

CHUNK = 4 * 1024 * 1024
TMP_DIR = ".tmp"


_per_thread = threading.local()
_sha_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
_copier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kernel-copy")


def _buffers() -> tuple[bytearray, bytearray]:
    """Two reusable read buffers per thread: allocating 8 MiB per small file costs more than hashing it."""
    if not hasattr(_per_thread, "buffers"):
        _per_thread.buffers = (bytearray(CHUNK), bytearray(CHUNK))
    return _per_thread.buffers


HEAD_SIZE = 8192
SMALL = 1024 * 1024        # inputs up to this size are hashed in memory before anything is written
TMP_PREFIX = ".put-"
FSYNC_EACH_UP_TO = 8       # at most this many unsynced objects are fsynced one by one, more with one syncfs


def hash_stream(stream: BinaryIO, sink: BinaryIO | None = None) -> Digest:
    """Hash with BLAKE3 and SHA-256 from one read, optionally copying to `sink`."""
    return copy_and_hash(stream, sink)[0]


def copy_and_hash(stream: BinaryIO, sink: BinaryIO | None = None) -> tuple[Digest, bytes]:
    """(digest, first 8 KiB) from one read of `stream`, copied to `sink` on the way.

    SHA-256 is the slow one (about 2 GB/s against BLAKE3's 7+), so for large
    inputs it runs on a second thread while this one feeds BLAKE3 and writes
    (both release the GIL); two buffers alternate so reading never waits long.
    """
    b3 = blake3.blake3()
    sha = hashlib.sha256()
    size = 0
    head = b""
    buffers = _buffers()
    pending = None
    turn = 0
    try:
        while True:
            buffer = buffers[turn]
            count = stream.readinto(buffer)
            if pending is not None:
                pending.result()  # the other buffer is free again
                pending = None
            if not count:
                break
            chunk = memoryview(buffer)[:count]
            if len(head) < HEAD_SIZE:
                head += bytes(chunk[:HEAD_SIZE - len(head)])
            if count == CHUNK:
                pending = _sha_worker.submit(sha.update, chunk)
            else:
                sha.update(chunk)
            b3.update(chunk)
            if sink is not None:
                sink.write(chunk)
            size += count
            turn ^= 1
    finally:
        if pending is not None:
            pending.result()  # never leave the worker reading a buffer the next call will fill
    return Digest(b3.hexdigest(), sha.hexdigest(), size), head


class _Prefixed:
    """A stream with its first bytes already read."""

    def __init__(self, prefix: bytes, rest: BinaryIO):
        self.prefix = memoryview(prefix)
        self.rest = rest

    def readinto(self, buffer) -> int:
        if self.prefix:
            count = min(len(buffer), len(self.prefix))
            buffer[:count] = self.prefix[:count]
            self.prefix = self.prefix[count:]
            return count
        return self.rest.readinto(buffer)


class _CheckedFile:
    """A file written with os.write, every byte accounted for: a short write is continued,
    and a write that makes no progress is the disk refusing (ENOSPC), never ignored."""

    def __init__(self, fd: int):
        self.fd = fd
        self.written = 0
        self.read_back = False      # True once its hashes were taken from the file itself

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        while view:
            count = os.write(self.fd, view)
            if count <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            view = view[count:]
            self.written += count
        return len(data)


class _KernelCopy:
    """The temp file's bytes as a stream, read back while the kernel copies the source into it.

    A local file offers `copy_into(fd, offset, most)` (copy_file_range: no trip through this
    process's memory, as `cp` does). The temp file is hashed from what it holds, one step behind
    the copy, so its digest is of the stored bytes themselves: that read-back is the check a
    copy made here gets afterwards. Each copied step is handed to the disk at once
    (sync_file_range), so the final fsync has little left to wait for."""

    STEP = 16 * 1024 * 1024
    UNABLE = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP}   # this pair of files cannot

    def __init__(self, source, handle: _CheckedFile, end: int):
        self.source = source
        self.fd = handle.fd
        self.handle = handle
        self.read = 0
        self.end = end
        self.copying = _copier.submit(self._step, end)

    @classmethod
    def start(cls, prefix: bytes, source, handle: _CheckedFile) -> _KernelCopy | None:
        """None when the source cannot be copied by the kernel (a stream, another filesystem):
        nothing is written then, and the caller copies it the ordinary way."""
        copy_into = getattr(source, "copy_into", None)
        if copy_into is None:
            return None
        try:
            first = copy_into(handle.fd, len(prefix), cls.STEP)
        except OSError as error:
            if error.errno in cls.UNABLE:
                return None
            raise
        handle.write(prefix)                # at the start: the copy wrote at an offset, not the file's position
        handle.written += first
        _start_writeback(handle.fd, 0, handle.written)
        return cls(source, handle, handle.written)

    def _step(self, offset: int) -> int:
        """On the copying thread: the next step copied, and handed to the disk (which may block)."""
        count = self.source.copy_into(self.fd, offset, self.STEP)
        _start_writeback(self.fd, offset, count)
        return count

    def readinto(self, buffer) -> int:
        while self.read == self.end:
            if self.copying is None:
                return 0
            count = self.copying.result()
            self.copying = None
            if count:
                self.end += count
                self.handle.written = self.end
                self.copying = _copier.submit(self._step, self.end)
        count = os.preadv(self.fd, [memoryview(buffer)[:min(len(buffer), self.end - self.read)]], self.read)
        if not count:
            raise StoredWrong(errno.EIO, f"the stored copy reads back {self.read} of the {self.end} bytes copied")
        self.read += count
        return count

    def __enter__(self) -> _KernelCopy:
        return self

    def __exit__(self, *stopped) -> None:
        if self.copying is not None:
            # never close the temp file under a copy still writing into it
            self.copying.exception()
            self.copying = None


class StoredWrong(OSError):
    """What was written is not what was read: the temp file is dropped, never named."""


class Put(NamedTuple):
    digest: Digest
    new: bool          # False when the store already held these bytes
    head: bytes        # the first 8 KiB, for telling what the bytes are without reading them again


class ObjectStore:
    def __init__(self, root: Path):
        self.root = root
        self.tmp = root / TMP_DIR
        # Objects named since the last sync. The pipeline may store on a second thread while the
        # main one commits: a sync takes the list under the lock, later puts start a new one.
        # Listed by name (its BLAKE3): the path is made only to sync file by file, which a batch of
        # more than FSYNC_EACH_UP_TO never is (another process's objects are handed over by name).
        self._unsynced: list[str] = []
        self._unsynced_lock = threading.Lock()
        self._folders: set[Path] = set()
        self._sequence = itertools.count(1)    # temp names; next() is atomic, so two threads never share one

    def path(self, blake3_hex: str) -> Path:
        return self.root.joinpath(blake3_hex[:2], blake3_hex)     # one join: ~3 us, not ~6

    def exists(self, blake3_hex: str) -> bool:
        return self.path(blake3_hex).exists()

    def put(self, stream: BinaryIO, *, durable: bool = False) -> Put:
        """Store the stream's bytes, write-once and read-only.

        With durable=False the bytes are renamed into place but made durable only
        by `sync()`, which the pipeline calls before it commits any record naming
        them: one sync per batch is what makes many small files fast.
        """
        small = _buffers()[0]
        view = memoryview(small)[:SMALL]
        filled = 0
        while filled < SMALL:
            count = stream.readinto(view[filled:])
            if not count:
                return self._put_small(view[:filled], durable)
            filled += count
        return self._put_large(bytes(view), stream, durable)

    def _put_small(self, data: memoryview, durable: bool) -> Put:
        """Bytes already in memory: hashed first, so held bytes are never written again, and the
        temp file is made beside its final name (a single busy temp folder is slow to create in)."""
        digest = Digest(blake3.blake3(data).hexdigest(), hashlib.sha256(data).hexdigest(), len(data))
        head = bytes(data[:HEAD_SIZE])
        final = self.path(digest.blake3)
        if self._holds(final, digest):
            self._synced_again(final, durable)
            return Put(digest, False, head)
        self._ensure_folder(final.parent)
        with self._writing(final.parent, durable, digest) as (tmp_path, handle):
            handle.write(data)
        self._install(tmp_path, final, durable)
        return Put(digest, True, head)

    def _put_large(self, prefix: bytes, stream: BinaryIO, durable: bool) -> Put:
        self._ensure_folder(self.tmp)
        found: list = []
        with self._writing(self.tmp, durable, found) as (tmp_path, handle):
            copied = _KernelCopy.start(prefix, stream, handle)
            if copied is None:
                digest, head = copy_and_hash(_Prefixed(prefix, stream), handle)
            else:
                with copied:
                    digest, head = copy_and_hash(copied)
                handle.read_back = True
            found.append(digest)
        final = self.path(digest.blake3)
        if self._holds(final, digest):
            tmp_path.unlink()
            self._synced_again(final, durable)
            return Put(digest, False, head)
        self._ensure_folder(final.parent)
        self._install(tmp_path, final, durable)
        return Put(digest, True, head)

    @contextmanager
    def _writing(self, folder: Path, durable: bool, expected):
        """A new temp file in `folder`, read-only once written; removed if anything fails.

        Before it may be named, its size and BLAKE3 are read back and compared with
        `expected` (a Digest, or a list the caller puts the Digest in once known): a
        write that silently came up short never becomes an object."""
        tmp_path = folder / f"{TMP_PREFIX}{os.getpid()}-{next(self._sequence)}"
        fd = None
        try:
            fd = os.open(tmp_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            handle = _CheckedFile(fd)
            yield tmp_path, handle
            digest = expected if isinstance(expected, Digest) else expected[0]
            _check_written(fd, handle.written, digest, read_back=handle.read_back)
            os.fchmod(fd, 0o444)
            if durable:
                os.fsync(fd)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
        finally:
            if fd is not None:
                os.close(fd)

    def _install(self, tmp_path: Path, final: Path, durable: bool) -> None:
        try:
            os.replace(tmp_path, final)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
        if durable:
            _fsync_path(final.parent)
        else:
            self.sync_later(final.name)

    def _synced_again(self, final: Path, durable: bool) -> None:
        """An object already in place may be one a killed run (or the storing process) named and
        never synced: the record about to name it must not be durable before it is. (Syncing what
        is already on disk costs next to nothing.)"""
        if durable:
            _fsync_path(final)
            _fsync_path(final.parent)
        else:
            self.sync_later(final.name)

    def _ensure_folder(self, folder: Path) -> None:
        if folder not in self._folders:
            # never `parents=True`: a case folder removed mid-run must not quietly be made again
            for needed in (self.root, folder):
                needed.mkdir(exist_ok=True)
            self._folders.add(folder)

    def put_bytes(self, data: bytes) -> Put:
        return self.put(io.BytesIO(data))

    @staticmethod
    def _holds(final: Path, digest: Digest) -> bool:
        """An object already in place counts only when it is whole and right: a power cut
        after rename but before fsync, or a disk that lost writes, can leave a short or
        wrong file, which a new put replaces."""
        try:
            if final.stat().st_size != digest.size:
                return False
            with open(final, "rb") as handle:
                return _blake3_of(handle.fileno(), digest.size) == digest.blake3
        except FileNotFoundError:
            return False

    def sync(self) -> None:
        """Make every object written since the last sync durable (data, then names).

        Many: one syncfs for the whole batch, since a journal commit per file is what makes
        fsync-each slow on ext4 (FACTS.md: ~250 us per small file)."""
        unsynced = self._take()
        if not unsynced:
            return
        try:
            # A few files (one large original) are synced one by one: syncfs would also wait for every
            # other program's unwritten data on the same disk, which can take longer than ours.
            if len(unsynced) <= FSYNC_EACH_UP_TO or not _syncfs(self.root):
                paths = self._paths(unsynced)
                for path in paths:
                    _fsync_path(path)
                for folder in {path.parent for path in paths}:
                    _fsync_path(folder)
        except BaseException:
            with self._unsynced_lock:
                self._unsynced[:0] = unsynced     # still not known durable: the next sync tries again
            raise

    def sync_later(self, blake3_hex: str) -> None:
        """An object named (here or by another process, ingest/storing.py) or found in place in this
        store: durable after the next sync."""
        with self._unsynced_lock:
            self._unsynced.append(blake3_hex)

    def take_unsynced(self) -> list[Path]:
        """The objects named since the last sync, now the caller's to sync (or to hand over)."""
        return self._paths(self._take())

    def _take(self) -> list[str]:
        with self._unsynced_lock:
            unsynced, self._unsynced = self._unsynced, []
        return unsynced

    def _paths(self, names: list[str]) -> list[Path]:
        return [self.path(name) for name in names]

    def clear_temp(self) -> int:
        """Remove temp files a killed run left behind (they were never named as objects)."""
        leftovers = self.temp_files()
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)
        return len(leftovers)

    def temp_files(self) -> list[Path]:
        found = sorted(self.tmp.iterdir()) if self.tmp.is_dir() else []
        if self.root.is_dir():
            for folder in self.root.iterdir():
                if len(folder.name) == 2 and folder.is_dir():
                    found += sorted(path for path in folder.iterdir() if path.name.startswith(TMP_PREFIX))
        return found

    def all_objects(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and len(folder.name) == 2:
                for item in sorted(folder.iterdir()):
                    if not item.name.startswith(TMP_PREFIX):
                        yield item.name

    def rehash(self, blake3_hex: str) -> Digest:
        with open(self.path(blake3_hex), "rb") as handle:
            return hash_stream(handle)


def _blake3_of(fd: int, size: int) -> str:
    """BLAKE3 of an open file's first `size` bytes, read with pread (the offset is left alone)."""
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO if size >= CHUNK else 1)
    buffer = _buffers()[1]
    offset = 0
    while offset < size:
        count = os.preadv(fd, [memoryview(buffer)[:min(CHUNK, size - offset)]], offset)
        if not count:
            break
        hasher.update(memoryview(buffer)[:count])
        offset += count
    return hasher.hexdigest()


def _check_written(fd: int, written: int, digest: Digest, *, read_back: bool) -> None:
    size = os.fstat(fd).st_size
    if written != digest.size or size != digest.size:
        raise StoredWrong(errno.EIO, f"the stored copy has {size} bytes, the original {digest.size}")
    if not read_back and _blake3_of(fd, size) != digest.blake3:
        raise StoredWrong(errno.EIO, "the stored copy does not read back as the bytes written")


SYNC_FILE_RANGE_WRITE = 2
_libc = None


def _c_library():
    """The C library already loaded into this process (find_library would run ldconfig: ~0.1 s),
    or False where it lacks syncfs."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.syncfs
        except (OSError, AttributeError):
            _libc = False
    return _libc


def _syncfs(path: Path) -> bool:
    """syncfs(2) on the filesystem holding `path`; False where the system has none."""
    libc = _c_library()
    if not libc:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syncfs(fd) != 0:
            # since Linux 5.8 syncfs reports a failed writeback (EIO, ENOSPC): never swallow it
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), str(path))
        return True
    finally:
        os.close(fd)


def _start_writeback(fd: int, offset: int, count: int) -> None:
    """Ask the disk to start writing these bytes now (sync_file_range WRITE: no waiting, no
    durability promise; the fsync or syncfs before commit still makes them durable)."""
    libc = _c_library()
    if libc and count:
        libc.sync_file_range(fd, ctypes.c_int64(offset), ctypes.c_int64(count), SYNC_FILE_RANGE_WRITE)


def _fsync_path(path: Path) -> None:
    """fsync a file or a folder (its names) by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
