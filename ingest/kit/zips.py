"""Reading zips safely, and naming what comes out of any container.

A zip is read, never unpacked to disk: each member is handed on as a stream. A member's
name is cleaned of roots, drives and '..' before it names anything. A member is refused
(the caller says so, and keeps the zip whole) when it declares more than MAX_MEMBER bytes,
or more than BOMB_FLOOR bytes at over BOMB_RATIO times its packed size, or when all members
together pass MAX_TOTAL; and no stream ever yields more than its member declared. A zip cut
short (no directory at its end) can still be read from its members' own local headers.

An attachment's name (in an email, an MMS) is only ever a name: `leaf_name` keeps its last
path element, so '../../x' or 'C:\\x' never points anywhere.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from typing import BinaryIO, Callable, Iterator

MAX_MEMBER = 4 << 30          # a WhatsApp document is at most 2 GB; more is not an export's
MAX_TOTAL = 64 << 30          # all members of one zip together
BOMB_RATIO = 100              # expansion above this on a member over BOMB_FLOOR bytes is a bomb
BOMB_FLOOR = 16 << 20
ZIP_LOCAL = b"PK\x03\x04"     # a local file header: how every zip (and its first member) starts
ZIP_END = b"PK\x05\x06"       # the end of the central directory: an empty zip is only this


def leaf_name(name: str | None) -> str | None:
    """The last path element of a name found inside a container, without NULs; None when empty."""
    if not name:
        return None
    return re.split(r"[\\/]", name.replace("\x00", ""))[-1].strip() or None


def safe_member_name(name: str) -> str:
    """A zip member's path made harmless: no drive, no root, no '..', no control characters."""
    cleaned = "".join(ch for ch in name.replace("\\", "/") if ch >= " " and ch != "\x7f")
    parts = [part for part in cleaned.split("/") if part not in ("", ".", "..")]
    if parts and re.fullmatch(r"[A-Za-z]:", parts[0]):
        parts = parts[1:]
    return "/".join(parts) or "unnamed"


def unique_names(infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """Members by safe name; two that clean up to the same name ('../a.jpg', 'a.jpg') both stay."""
    named: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = base = safe_member_name(info.filename)
        copy = 1
        while name in named:
            copy += 1
            stem, dot, extension = base.rpartition(".")
            name = f"{stem} ({copy}).{extension}" if dot and stem else f"{base} ({copy})"
        named[name] = info
    return named


def bomb_reason(info: zipfile.ZipInfo) -> str | None:
    """Why a member's declared sizes make it unsafe to unpack, or None."""
    if info.file_size > MAX_MEMBER:
        return f"it says it unpacks to {info.file_size} bytes, more than the {MAX_MEMBER} allowed"
    if info.file_size > BOMB_FLOOR and info.file_size > BOMB_RATIO * max(info.compress_size, 1):
        return (f"it would expand {info.file_size // max(info.compress_size, 1)} times "
                f"({info.compress_size} to {info.file_size} bytes), the mark of a zip bomb")
    return None


class MemberStream(io.RawIOBase):
    """A zip member read as a stream, never past the size it declared; damage becomes an OSError
    (what the pipeline expects from a stream), said in plain words."""

    def __init__(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo):
        self.info = info
        self.count = 0
        try:
            self.inner = archive.open(info)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as error:
            raise OSError(f"the zip member {safe_member_name(info.filename)} cannot be opened ({error})") from None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self.inner.read(min(len(buffer), 1 << 20))
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as error:
            raise OSError(f"the zip member {safe_member_name(self.info.filename)} is damaged ({error})") from None
        self.count += len(data)
        if self.count > self.info.file_size:   # zipfile stops at the declared size; this is a second guard
            raise OSError(f"the zip member {safe_member_name(self.info.filename)} is larger than it declared")
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed and hasattr(self, "inner"):
            self.inner.close()
        super().close()


class LocalMemberStream(io.RawIOBase):
    """One member read from its local header onwards, for a zip whose directory is missing.

    Stops at the size the header declares (or the bomb limit when it declares none). Data
    that ends early or fails its checksum ends the stream and is named in `problem`, so the
    reader still gets every byte that is there (the reader then says what went wrong)."""

    def __init__(self, handle: BinaryIO, name: str, method: int, compressed: int | None, size: int | None,
                 crc: int | None):
        self.handle, self.name, self.method = handle, name, method
        self.left_in = compressed
        self.limit = size if size is not None else MAX_MEMBER
        self.crc_expected, self.crc, self.count = crc, 0, 0
        self.inflater = zlib.decompressobj(-15) if method == zipfile.ZIP_DEFLATED else None
        self.done = False
        self.problem: str | None = None

    def readable(self) -> bool:
        return True

    def _take(self, size: int) -> bytes:
        if self.left_in is not None:
            size = min(size, self.left_in)
        data = self.handle.read(size) if size else b""
        if self.left_in is not None:
            self.left_in -= len(data)
        return data

    def readinto(self, buffer) -> int:
        if self.done:
            return 0
        want = min(len(buffer), 1 << 20)
        while True:
            if self.inflater is None:
                data = self._take(want)
                if not data and self.left_in:
                    return self._stop(f"{self.name} ends early: the zip was cut short")
            elif self.inflater.eof:
                data = b""
            else:
                chunk = self.inflater.unconsumed_tail or self._take(1 << 16)
                if not chunk:
                    return self._stop(f"{self.name} ends early: the zip was cut short")
                data = self.inflater.decompress(chunk, want)
                if not data:
                    continue
            break
        if not data:
            self.done = True
            if self.crc_expected is not None and self.crc != self.crc_expected:
                self.problem = f"{self.name} is damaged (its checksum does not match)"
            return 0
        self.count += len(data)
        if self.count > self.limit:
            return self._stop(f"{self.name} is larger than it declared")
        self.crc = zlib.crc32(data, self.crc)
        buffer[:len(data)] = data
        return len(data)

    def _stop(self, problem: str) -> int:
        self.problem, self.done = problem, True
        return 0

    def close(self) -> None:
        if not self.closed:
            self.handle.close()
        super().close()


def first_local_member(open_original: Callable[[], BinaryIO], wanted: Callable[[str], bool]):
    """(safe name, opener) of the first member `wanted` accepts, found by walking local headers
    from the front (for a zip without its directory), or None."""
    with open_original() as handle:
        offset = 0
        while True:
            handle.seek(offset)
            header = handle.read(30)
            if len(header) < 30 or not header.startswith(ZIP_LOCAL):
                return None
            flags, method, _time, _date, crc, compressed, size, name_len, extra_len = struct.unpack(
                "<HHHHIIIHH", header[6:30])
            raw_name = handle.read(name_len)
            name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
            data_at = offset + 30 + name_len + extra_len
            described = not flags & 0x08       # sizes and checksum are in this header, not after the data
            readable = method == zipfile.ZIP_DEFLATED or (method == zipfile.ZIP_STORED and described)
            if wanted(name) and readable and not flags & 0x1:
                def opener(at=data_at, method=method, compressed=compressed, size=size, crc=crc):
                    stream = open_original()
                    stream.seek(at)
                    member = LocalMemberStream(stream, safe_member_name(name), method,
                                               compressed if described else None, size if described else None,
                                               crc if described else None)
                    return io.BufferedReader(member, buffer_size=1 << 20)
                return safe_member_name(name), opener
            if not described:
                return None                    # the next header cannot be found without the directory
            offset = data_at + compressed


def member_opener(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], BinaryIO]:
    return lambda: io.BufferedReader(MemberStream(archive, info), buffer_size=1 << 20)


def head_members(head: bytes) -> Iterator[tuple[str, bytes]]:
    """(name, first bytes unpacked) of each member whose local header is in the first bytes of a
    zip: enough to recognise what a member holds (a chat text, whatever it is called) by content."""
    offset = 0
    for name in zip_head_names(head):
        flags, method, compressed, name_len, extra_len = (
            *struct.unpack_from("<HH", head, offset + 6), struct.unpack_from("<I", head, offset + 18)[0],
            *struct.unpack_from("<HH", head, offset + 26))
        data = head[offset + 30 + name_len + extra_len:offset + 30 + name_len + extra_len + (compressed or len(head))]
        if flags & 0x1:
            start = b""
        elif method == zipfile.ZIP_DEFLATED:
            try:
                start = zlib.decompressobj(-15).decompress(data, 8192)
            except zlib.error:
                start = b""
        else:
            start = data[:8192] if method == zipfile.ZIP_STORED else b""
        yield name, start
        offset += 30 + name_len + extra_len + compressed


def zip_head_names(head: bytes) -> Iterator[str]:
    """Member names visible in the first bytes of a zip (local headers, in order)."""
    offset = 0
    while head.startswith(ZIP_LOCAL, offset) and offset + 30 <= len(head):
        flags, compressed, name_len, extra_len = (struct.unpack_from("<H", head, offset + 6)[0],
                                                  struct.unpack_from("<I", head, offset + 18)[0],
                                                  *struct.unpack_from("<HH", head, offset + 26))
        raw = head[offset + 30:offset + 30 + name_len]
        yield raw.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
        if flags & 0x08:      # sizes come after the data: the next header cannot be found from here
            return
        offset += 30 + name_len + extra_len + compressed
