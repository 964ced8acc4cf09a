"""What an adapter may ask of the pipeline, and nothing more.

Sources and parsers receive a `Context`. They never see the case, the store, the
index or the run's summary: whatever they learn or decide reaches the case only
through these calls, and only the pipeline turns it into stored, logged evidence.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol

from ingest.model.times import LocalTime


class Context(Protocol):
    timezone: str                        # the case's IANA zone, for times written without one
    region: str                          # the case's phone region, e.g. "GB"
    excluded_paths: tuple[Path, ...]     # folders a source must never read (the case itself)

    # --- for sources ---------------------------------------------------------------------
    def already_held(self, source_key: str, fingerprint: str | None = None) -> bool:
        """True (and counted) when the case already holds this key, so it need not be read."""

    def held_without_asking(self, count: int) -> None:
        """Count originals a source skipped because its own saved state says the case holds them."""

    def expect(self, container: str, count: int) -> None:
        """The source says a folder or backup holds `count` items: the summary compares."""

    def acquired(self, container: str, count: int = 1) -> None:
        """Items of `container` the case now holds."""

    def expect_originals(self, count: int) -> None:
        """How many originals are coming, for the progress bar."""

    def failed(self, location: str, reason: str) -> None:
        """An item that could not be handed over: named in the summary; the run exits non-zero."""

    def get_state(self, key: str) -> str | None:
        """What this source saved in an earlier run (e.g. an IMAP folder's highest UID)."""

    def set_state(self, key: str, value: str) -> None:
        """Saved with the next commit. State that must not run ahead of an original goes on
        `Original.state` instead, and is committed together with that original."""

    # --- for parsers ---------------------------------------------------------------------
    def note(self, text: str) -> None:
        """A sentence for the run's summary (said once however often it is noted)."""

    def warn(self, message: str) -> None:
        """A warning shown while the run goes on."""

    def localize(self, naive: datetime) -> LocalTime:
        """A time written without a zone, read in the case's zone (assumed, DST-flagged)."""

    def phone(self, raw: str) -> str | None:
        """A phone number in E.164 for the case's region, or None when it is not one."""

    def cached_derived(self, original_blake3: str, type_: str, tool: str) -> bytes | None:
        """An artifact (OCR text) this tool already made from these bytes, so it is not redone."""
