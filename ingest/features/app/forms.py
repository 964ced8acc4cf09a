"""Reading a posted form: the CSRF token checked first, uploaded files streamed to disk.

A multipart body is parsed as it arrives (python-multipart's streaming parser): each
file is written to the upload folder chunk by chunk, so a 1 GB export never sits in
memory. Fields must come before files (the page's forms are written that way), so a
request without the right CSRF token is refused before a byte of a file is kept.
A `mtime` field just before a file carries the file's own modified time (the browser
knows it), which the temporary copy takes on, so a file dated by its mtime keeps its date.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException
from starlette.requests import Request

from ingest.features.app.security import csrf_ok

MAX_FIELD = 1024 * 1024          # a typed field is never this long; a file part goes to disk instead
NAME_LIMIT = 120
UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Form:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[-1].strip() if values else default

    def items(self, name: str, *, commas: bool = True) -> list[str]:
        """A box of one item a line (or separated by commas): numbers, addresses, folders."""
        text = self.get(name)
        return [item.strip() for item in (text.replace(",", "\n") if commas else text).splitlines() if item.strip()]


class Refused(HTTPException):
    def __init__(self, message: str):
        super().__init__(403, message)


async def read_form(request: Request, token: str, upload_dir: Path | None = None) -> Form:
    """The posted form, after its CSRF token is checked; files go to `upload_dir` (else refused)."""
    content_type, _options = parse_options_header(request.headers.get("content-type", ""))
    if content_type == b"multipart/form-data":
        form = await _multipart(request, token, upload_dir)
    else:
        data = await request.form()
        form = Form()
        for key, value in data.multi_items():
            form.fields.setdefault(key, []).append(str(value))
    if not csrf_ok(token, form.get("csrf")):
        _discard(form)
        raise Refused("This form is out of date or did not come from the app. Go back, reload the page, try again.")
    return form


async def _multipart(request: Request, token: str, upload_dir: Path | None) -> Form:
    _type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if not boundary:
        raise HTTPException(400, "The form could not be read.")
    reader = _PartReader(token, upload_dir)
    parser = MultipartParser(boundary, reader.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            reader.raise_refusal()
        parser.finalize()
    except BaseException:
        reader.abandon()
        raise
    return reader.form


class _PartReader:
    """python-multipart callbacks: headers, then each part's data to a field or a file."""

    def __init__(self, token: str, upload_dir: Path | None):
        self.token = token
        self.upload_dir = upload_dir
        self.form = Form()
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.name = ""
        self.value = bytearray()
        self.handle = None
        self.path: Path | None = None
        self.refusal: HTTPException | None = None

    def callbacks(self) -> dict:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field_data,
                "on_header_value": self.header_value_data, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.part_end}

    def raise_refusal(self) -> None:
        if self.refusal:
            raise self.refusal

    def part_begin(self) -> None:
        self.headers, self.value, self.handle, self.path = {}, bytearray(), None, None

    def header_field_data(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def header_value_data(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field, self.header_value = b"", b""

    def headers_finished(self) -> None:
        _disposition, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in options or self.refusal:
            return
        if not csrf_ok(self.token, self.form.get("csrf")):
            self.refusal = Refused("This form is out of date or did not come from the app. Reload the page.")
            return
        if self.upload_dir is None:
            self.refusal = HTTPException(400, "This form does not take files.")
            return
        filename = options[b"filename"].decode("utf-8", "replace")
        if not filename:            # a file input left empty
            return
        self.path = unique_path(self.upload_dir, filename)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.handle = open(self.path, "xb")

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.refusal:
            return
        if self.handle is not None:
            self.handle.write(data[start:end])
        elif self.path is None:
            self.value += data[start:end]
            if len(self.value) > MAX_FIELD:
                self.refusal = HTTPException(413, "A field of this form is far too long.")

    def part_end(self) -> None:
        if self.refusal:
            return
        if self.handle is not None:
            self.handle.close()
            self.handle = None
            mtime = self.form.fields.pop("mtime", [None])[-1]
            if mtime and mtime.isdigit():         # milliseconds, as the browser gives File.lastModified
                os.utime(self.path, (int(mtime) / 1000, int(mtime) / 1000))
            self.form.files.append(self.path)
        elif self.path is None:
            self.form.fields.setdefault(self.name, []).append(self.value.decode("utf-8", "replace"))

    def abandon(self) -> None:
        if self.handle is not None:
            self.handle.close()
        _discard(self.form)
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def unique_path(folder: Path, filename: str) -> Path:
    """Where an uploaded file goes: its relative path kept (a dropped folder's layout), made
    safe (no '..', no absolute path, no control characters), never overwriting another."""
    parts = [UNSAFE.sub("", part)[:NAME_LIMIT] for part in re.split(r"[\\/]+", filename)]
    parts = [part for part in parts if part.strip(" .")] or ["upload"]
    path = folder.joinpath(*parts)
    stem, suffix, number = path.stem, path.suffix, 1
    while path.exists():
        number += 1
        path = path.with_name(f"{stem} ({number}){suffix}")
    return path


def _discard(form: Form) -> None:
    for path in form.files:
        path.unlink(missing_ok=True)
    form.files.clear()
