"""The two kinds of adapter. Sources say where originals come from; parsers say what they mean.

Neither touches the store or the index: they talk to the pipeline through `ctx`
(see `ingest.pipeline.RunContext`).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Iterator

from ingest.model.records import Child, Original, ParseWarning, Record, StoredOriginal


class Source:
    name: ClassVar[str]

    def __init__(self, paths: list[Path] | None = None, options: dict | None = None):
        self.paths = [Path(p) for p in paths or []]
        self.options = options or {}

    def originals(self, ctx) -> Iterator[Original]:
        raise NotImplementedError


class Parser:
    name: ClassVar[str]
    version: ClassVar[str]
    # `--source` presets this parser serves: preset name -> source name.
    presets: ClassVar[dict[str, str]] = {}
    # Higher wins when several parsers sniff yes (the generic file parser is lowest).
    priority: ClassVar[int] = 0

    def __init__(self, options: dict | None = None):
        self.options = options or {}

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    def sniff(self, head: bytes, filename: str | None) -> bool:
        return False

    def prefetch(self, stored: StoredOriginal, ctx) -> None:
        """Called a little ahead of `parse` so slow work (OCR) can start in parallel."""

    def parse(self, stored: StoredOriginal, ctx) -> Iterator[Record | Child | ParseWarning]:
        raise NotImplementedError
