"""Reading local files without touching them: for the files source and for features that
keep a file (`ingest note --attach`, `ingest watch`).

A file is opened with O_NOATIME where allowed (its access time stays as it was), never
follows a FIFO that replaced it, and is checked at the end of the read for any change
while it was read (then `OriginalChanged`)."""

from __future__ import annotations

import errno
import os
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

from ingest.kit.context import Context
from ingest.model.errors import OriginalChanged, SourceError
from ingest.model.records import Original
from ingest.model.times import iso_utc

# O_NOATIME keeps even the access time of the user's files as it was (owner or root only).
NOATIME = getattr(os, "O_NOATIME", 0)


def open_untouched(path: str) -> tuple[BinaryIO, os.stat_result]:
    """Open for reading without changing the access time where the system allows it,
    and without blocking on a FIFO that replaced the file since it was looked at; with
    what the open file is (its fstat)."""
    flags = os.O_RDONLY | os.O_NONBLOCK
    try:
        fd = os.open(path, flags | NOATIME)
    except PermissionError:
        fd = os.open(path, flags)
    opened = os.fstat(fd)
    if not stat.S_ISREG(opened.st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb", buffering=0), opened


class WatchedRead:
    """Reads a file and, at its end, checks nothing changed while it was read."""

    def __init__(self, path: str, before: os.stat_result):
        self.path = path
        self.before = before
        self.handle, opened = open_untouched(path)
        if (opened.st_ino, opened.st_dev) != (before.st_ino, before.st_dev):
            # another file put in its place since it was looked at: at the end the path could name
            # the first again (a sync client's swap and swap back), so only here can it be told
            self.handle.close()
            raise OriginalChanged(path)
        self.count = 0
        self.copied_in_kernel = False

    def readinto(self, buffer) -> int:
        count = self.handle.readinto(buffer)
        return self._counted(count)

    def copy_into(self, fd: int, offset: int, most: int) -> int:
        """Copy up to `most` of the next bytes into `fd` at `offset` inside the kernel
        (copy_file_range, as `cp` does); 0 at the end, after the same check as `readinto`.
        OSError EXDEV, EINVAL... when the two files cannot be copied so (other filesystems)."""
        if self.count >= self.before.st_size:
            if not self.copied_in_kernel:
                # its size says nothing is left, yet it was read this far (/proc, /sys): only reading
                # tells what such a file holds
                raise OSError(errno.EINVAL, "the size of this file does not say what is left to copy")
            return self._counted(0)
        count = os.copy_file_range(self.handle.fileno(), fd, most, None, offset)
        self.copied_in_kernel = True
        return self._counted(count)

    def _counted(self, count: int) -> int:
        if count:
            self.count += count
            return count
        after = os.stat(self.path)
        if (self.count != self.before.st_size or after.st_size != self.before.st_size
                or after.st_mtime_ns != self.before.st_mtime_ns or after.st_ino != self.before.st_ino):
            raise OriginalChanged(self.path)
        return 0

    def read(self, size: int = -1) -> bytes:
        buffer = bytearray(size if size >= 0 else max(self.before.st_size, 1) + 1)
        count = self.readinto(buffer)
        return bytes(buffer[:count])

    def close(self) -> None:
        self.handle.close()


def file_meta(path: str, info: os.stat_result) -> dict:
    shown: dict[float, str] = {}     # a file's three times are often two or one

    def moment(seconds: float) -> str:
        if seconds not in shown:
            shown[seconds] = iso_utc(datetime.fromtimestamp(seconds, timezone.utc))
        return shown[seconds]

    meta = {"path": path, "size": info.st_size, "mtime": moment(info.st_mtime), "mtime_ns": info.st_mtime_ns,
            "ctime": moment(info.st_ctime), "atime": moment(info.st_atime), "mode": oct(stat.S_IMODE(info.st_mode))}
    birth = getattr(info, "st_birthtime", None)
    if birth:
        meta["birthtime"] = moment(birth)
    return meta


def fingerprint(info: os.stat_result) -> str:
    return f"{info.st_size}:{info.st_mtime_ns}:{info.st_ino}"


def original_for(path: str, info: os.stat_result, *, key: str | None = None) -> Original:
    """The file at `path` as an original, known by its path or by `key` (which then stands in
    for the path in its metadata too)."""
    return Original(stream=WatchedRead(path, info), source_key=key or path, filename=os.path.basename(path),
                    source_meta=file_meta(key or path, info), fingerprint=fingerprint(info),
                    reopen=lambda: WatchedRead(path, os.stat(path)))


def walk(roots: list[Path], on_error=None, skip: tuple[Path, ...] = ()) -> Iterator[str]:
    """Every file path under `roots`, sorted, never descending into a folder in `skip` (the case itself)."""
    for root in roots:
        root_path = os.path.abspath(root)
        if os.path.isfile(root_path) or not os.path.isdir(root_path):
            yield root_path
            continue
        for folder, dirs, files in os.walk(root_path, onerror=on_error):
            if any(Path(folder) == excluded or excluded in Path(folder).parents for excluded in skip):
                dirs[:] = []
                continue
            dirs.sort()
            for name in sorted(files):
                yield os.path.join(folder, name)


def check_roots(paths: list[Path]) -> None:
    if not paths:
        raise SourceError("No files or folders were given.", hint="Name at least one, e.g. `ingest run ~/Evidence`.")
    for path in paths:
        if not os.path.lexists(path):
            raise SourceError(f"{path} does not exist.", hint="Check the spelling, or drag the file into the terminal.",
                              location=str(path))
        if os.path.isdir(path) and not os.access(path, os.R_OK | os.X_OK):
            raise SourceError(f"No permission to read the folder {path}.",
                              hint="Run as a user who can open it.", location=str(path))


def regular_files(paths: list[Path], ctx: Context) -> Iterator[tuple[str, os.stat_result]]:
    """Regular files to read, with their stat, never from `ctx.excluded_paths` (the case itself);
    FIFOs, sockets and devices are skipped with a warning."""
    check_roots(paths)
    # Counted in a first pass (for the progress bar) rather than listed, so memory stays flat.
    ctx.expect_originals(sum(1 for _path in walk(paths, skip=ctx.excluded_paths)))

    def unreadable(error: OSError) -> None:
        ctx.failed(error.filename, "no permission to read this folder" if isinstance(error, PermissionError)
                   else error.strerror or str(error))

    for path in walk(paths, unreadable, skip=ctx.excluded_paths):
        try:
            info = os.stat(path)
        except OSError as error:
            ctx.failed(path, error.strerror or str(error))
            continue
        if not stat.S_ISREG(info.st_mode):
            ctx.warn(f"Skipped {path}: not a regular file (a pipe, socket or device); nothing was read from it.")
            continue
        if not os.access(path, os.R_OK):
            ctx.failed(path, "no permission to read this file")
            continue
        yield path, info

