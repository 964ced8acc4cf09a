"""The `files` source: files and folders on this machine, read without touching them
(the reading itself is the kit's: `ingest.kit.localfiles`)."""

from __future__ import annotations

from typing import Iterator

from ingest.kit.adapter import Source
from ingest.kit.context import Context
from ingest.kit.localfiles import fingerprint, original_for, regular_files
from ingest.kit.registry import register
from ingest.model.records import Original


@register
class FilesSource(Source):
    """Files and folders, recursively; the user's files are only read, never changed."""

    name = "files"

    def originals(self, ctx: Context) -> Iterator[Original]:
        for path, info in regular_files(self.paths, ctx):
            if ctx.already_held(path, fingerprint(info)):
                continue
            yield original_for(path, info)
