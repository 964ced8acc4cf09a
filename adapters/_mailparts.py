"""Large mail without loading it: the bodies too big to hold are cut out and streamed.

    shape = Skeleton.of(path, size)   # shape.data: the message with each large body
                                      # replaced by one token; shape.pieces(raw): the
                                      # raw bytes and byte ranges a skeleton's text stands for
    stream = DecodedPieces(path, pieces, "base64")   # a part's bytes, decoded as they are read

The standard library's parser holds a whole message, several times over (a 1 GB
attachment took 8.6 GB). So a large message is read as a stream twice: a scan finds
the bodies of leaf parts worth cutting, and the parser reads a skeleton in which each
such body is one token; wherever a token turns up in a part (its body, or an attached
message written back out) the part's bytes are the skeleton's bytes with the token
replaced by its byte range of the stored message, decoded on their way to the store.

Why the skeleton parses exactly as the whole message would: a cut is whole lines of
a body holding no line that starts with "--", and every MIME boundary line starts
with "--", so no boundary is removed or invented, whatever the scan believed the
structure to be; a cut only begins after the blank line ending a header block that
declares a leaf Content-Type (or the message's own headers), so no header is cut.
Where the scan is wrong about a part's extent, the token sits inside a larger body
and is still replaced by its bytes: nothing is lost. Each token carries a random
nonce, so text in a message cannot pass for one.
"""

from __future__ import annotations

import binascii
import re
import secrets
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import BinaryIO, NamedTuple, Union

CUT_MIN = 1 << 20              # a leaf body at least this large is streamed instead of parsed
HEADER_LIMIT = 1 << 20         # a header block this large is not trusted: nothing right after it is cut
BLOCK = 1 << 20
BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
NOT_BASE64 = bytes(sorted(set(range(256)) - set(BASE64_ALPHABET)))
LINE_ENDS = (b"\r\n", b"\n")


class Span(NamedTuple):
    """Bytes of the stored message, [start, end)."""

    start: int
    end: int


Piece = Union[bytes, Span]


class Skeleton(NamedTuple):
    data: bytes
    spans: dict[bytes, Span]
    token: re.Pattern | None

    @classmethod
    def of(cls, path: Path, size: int) -> "Skeleton":
        with open(path, "rb") as handle:
            return _Scan(handle, size).run()

    def pieces(self, raw: bytes) -> list[Piece] | None:
        """The bytes `raw` (part of the skeleton) stands for, or None when it holds no token."""
        if self.token is None or not self.token.search(raw):
            return None
        found: list[Piece] = []
        position = 0
        for match in self.token.finditer(raw):
            if match.start() > position:
                found.append(raw[position:match.start()])
            found.append(self.spans[match.group(0)])
            position = match.end()
        if position < len(raw):
            found.append(raw[position:])
        return found


class _Scan:
    def __init__(self, handle: BinaryIO, size: int):
        self.handle = handle
        self.size = size
        self.out = bytearray()
        self.spans: dict[bytes, Span] = {}
        self.prefix = b"ingest-streamed-part-" + secrets.token_hex(8).encode() + b"-"

    def run(self) -> Skeleton:
        position, headers_next, top = 0, True, True
        while position < self.size:
            if headers_next:
                position, headers_next = self.headers(position, top)
                top = False
            else:
                position, headers_next = self.copy_through_dash_line(position)
        token = re.compile(re.escape(self.prefix) + rb"\d+") if self.spans else None
        return Skeleton(bytes(self.out), self.spans, token)

    def headers(self, position: int, top: bool) -> tuple[int, bool]:
        """Copy one header block; cut the leaf body after it if large. (next position, headers next?)"""
        handle = self.handle
        handle.seek(position)
        block = bytearray()
        line = b""
        while len(block) <= HEADER_LIMIT:
            line = handle.readline(HEADER_LIMIT)
            block += line
            if not line or line in LINE_ENDS:
                break
        self.out += block
        position += len(block)
        if line not in LINE_ENDS:
            return position, False             # the headers never ended clearly: copy on, cut nothing
        fields = BytesHeaderParser(policy=policy.compat32).parsebytes(bytes(block))
        kind = fields.get_content_type()
        if kind.startswith("message/"):
            return position, True              # an attached message: its own headers follow
        if kind.startswith("multipart/") or (fields.get("Content-Type") is None and not top):
            return position, False             # (a part without Content-Type may be a message, in a digest)
        return self.cut(position), False

    def cut(self, start: int) -> int:
        """A leaf body from `start` to the next line starting with "--": replaced by a token if large."""
        end = self.find_dash_line(start)
        if end - start < CUT_MIN:
            return start                       # small: copied on with what follows
        body_end = end
        if end < self.size:                    # the line end before a boundary belongs to the boundary
            body_end -= len(self._line_end(end))
        token = self.prefix + str(len(self.spans) + 1).encode()
        self.spans[token] = Span(start, body_end)
        self.out += token
        self.handle.seek(body_end)
        self.out += self.handle.read(end - body_end)
        return end

    def _line_end(self, end: int) -> bytes:
        self.handle.seek(end - 2)
        tail = self.handle.read(2)
        return b"\r\n" if tail == b"\r\n" else b"\n" if tail.endswith(b"\n") else b""

    def copy_through_dash_line(self, position: int) -> tuple[int, bool]:
        """Copy up to and including the next line starting with "--". (next position, headers next?)"""
        end = self.find_dash_line(position)
        self.handle.seek(position)
        self.out += self.handle.read(end - position)
        if end >= self.size:
            return end, False
        line = self.handle.readline(HEADER_LIMIT)
        self.out += line
        # after a closing boundary comes an epilogue or the rest of an outer part, not headers
        return end + len(line), not line.rstrip().endswith(b"--")

    def find_dash_line(self, position: int) -> int:
        """The offset of the first line at or after `position` (a line start) that starts with "--"."""
        handle = self.handle
        handle.seek(position)
        if handle.read(2) == b"--":
            return position
        handle.seek(position)
        offset, carry = position, b""
        while block := handle.read(BLOCK):
            data = carry + block
            found = data.find(b"\n--")
            if found >= 0:
                return offset - len(carry) + found + 1
            carry = data[-2:]
            offset += len(block)
        return self.size


class DecodedPieces:
    """A part's bytes (skeleton bytes and spans of the stored message), decoded as they are read."""

    def __init__(self, path: Path, pieces: list[Piece], encoding: str):
        self.path = path
        self.pieces = iter(pieces)
        self.handle = None
        self.left = 0
        encoding = encoding.strip().lower()
        self.decoder = (self._base64 if encoding == "base64"
                        else self._quoted_printable if encoding == "quoted-printable" else None)
        self.carry = b""
        self.ready = memoryview(b"")
        self.done = False

    def _raw(self) -> bytes:
        """The next block of undecoded bytes, b"" at the end."""
        while True:
            if self.left > 0:
                block = self.handle.read(min(BLOCK, self.left))
                self.left = self.left - len(block) if block else 0   # a file shorter than expected ends it
                if block:
                    return block
            piece = next(self.pieces, None)
            if piece is None:
                return b""
            if isinstance(piece, bytes):
                if piece:
                    return piece
                continue
            if self.handle is None:
                self.handle = open(self.path, "rb")
            self.handle.seek(piece.start)
            self.left = piece.end - piece.start

    def _base64(self, raw: bytes, final: bool) -> bytes:
        # as the parser decodes: characters outside the alphabet are skipped, missing padding is added
        data = self.carry + raw.translate(None, NOT_BASE64)
        keep = len(data) % 4
        if final:
            data = data[:len(data) - keep] if keep == 1 else data + b"=" * (-len(data) % 4)
            self.carry = b""
        else:
            data, self.carry = data[:len(data) - keep], data[len(data) - keep:]
        return binascii.a2b_base64(data)

    def _quoted_printable(self, raw: bytes, final: bool) -> bytes:
        data = self.carry + raw
        cut = len(data) if final else data.rfind(b"\n") + 1
        self.carry = data[cut:]
        return binascii.a2b_qp(data[:cut])

    def _fill(self) -> bool:
        while not self.ready:
            if self.done:
                return False
            raw = self._raw()
            self.done = not raw
            self.ready = memoryview(raw if self.decoder is None else self.decoder(raw, self.done))
        return True

    def readinto(self, buffer) -> int:
        if not self._fill():
            return 0
        count = min(len(buffer), len(self.ready))
        buffer[:count] = self.ready[:count]
        self.ready = self.ready[count:]
        return count

    def read(self, size: int = -1) -> bytes:
        pieces = []
        while size != 0 and self._fill():
            count = len(self.ready) if size < 0 else min(size, len(self.ready))
            pieces.append(bytes(self.ready[:count]))
            self.ready = self.ready[count:]
            size = size - count if size > 0 else size
        return b"".join(pieces)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()


class CutBodies:
    """The large bodies a skeleton left out, read back from the stored message when a part holds one."""

    def __init__(self, shape: Skeleton, path: Path):
        self.shape = shape
        self.path = path

    def pieces(self, part: Message) -> list[Piece] | None:
        # The payload as compat32 holds it, undeclared 8-bit bytes as surrogates: get_payload()
        # would replace those, and the bytes around a token must come back exactly.
        payload = part._payload
        if isinstance(payload, list):    # an attached message: its bytes as the generator writes them out
            try:
                raw = b"\n".join(inner.as_bytes() for inner in payload if isinstance(inner, Message))
            except Exception:   # written out, and its problem said, by Body.part_bytes
                return None
        elif isinstance(payload, str):
            raw = payload.encode("ascii", "surrogateescape")
        else:
            return None
        return self.shape.pieces(raw)

    @staticmethod
    def encoding(part: Message) -> str:
        return "" if part.is_multipart() else str(part.get("Content-Transfer-Encoding", ""))

    def text_bytes(self, part: Message, pieces: list[Piece], limit: int) -> bytes:
        """The first `limit` bytes of a huge text body, for the record's searchable text (cut at a line end)."""
        with DecodedPieces(self.path, pieces, self.encoding(part)) as stream:
            data = stream.read(limit)
            more = bool(stream.read(1))
        if more and b"\n" in data[-4096:]:
            data = data[:data.rindex(b"\n") + 1]   # never end inside a multi-byte character
        return data
