"""The `files` source: files and folders on this machine, read without touching them
(the reading itself is the kit's: `ingest.kit.localfiles`)."""

from __future__ import annotations

import os
from typing import Iterator

from ingest.kit.adapter import Source
from ingest.kit.context import Context
from ingest.kit.localfiles import fingerprint, original_for, regular_files
from ingest.kit.registry import register
from ingest.model.records import Original


@register
class FilesSource(Source):
    """Files and folders, recursively; the user's files are only read, never changed.

    Library option `key_base` (e.g. "upload"): the files are known as `upload/<place under the
    folder given>` instead of by their path, for copies that live in a scratch folder only while
    they are kept (the app's uploads): a path that no longer exists names nothing."""

    name = "files"
    separate_streams = True      # each original is its own open file

    def originals(self, ctx: Context) -> Iterator[Original]:
        key_base = self.options.get("key_base")
        for path, info in regular_files(self.paths, ctx):
            key = f"{key_base}/{self.place(path)}" if key_base else path
            if ctx.already_held(key, fingerprint(info)):
                continue
            yield original_for(path, info, key=key)

    def place(self, path: str) -> str:
        """Where a file sits under the folder it was found in (a file given alone: its name)."""
        for root in self.paths:
            root_path = os.path.abspath(root)
            if os.path.isdir(root_path) and path.startswith(root_path.rstrip(os.sep) + os.sep):
                return os.path.relpath(path, root_path)
        return os.path.basename(path)
