"""The two kinds of adapter. Sources say where originals come from; parsers say what they mean.

Neither touches the store or the index: they talk to the pipeline through a
`Context` (ingest/kit/context.py). Each declares the command-line options it takes
(`cli_options`) and checks them itself (`check_options`), so `ingest run` offers a
plugin's options exactly as it offers the built-in ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

from ingest.kit.context import Context
from ingest.model.records import Child, NotThisFormat, Original, ParseWarning, Record, StoredOriginal


@dataclass(frozen=True)
class Option:
    """One `ingest run` option an adapter takes; its value reaches the adapter as options[dest]."""

    flag: str                                 # e.g. "--host"
    dest: str                                 # the key in the adapter's options
    help: str
    metavar: str | None = None
    multiple: bool = False
    is_flag: bool = False
    choices: tuple[str, ...] | None = None
    default: Any = None
    type: type | None = None                  # int, Path; text when None
    old_flags: tuple[str, ...] = ()           # earlier names, still accepted with a note saying the new one


def plainly_binary(head: bytes) -> bool:
    """Bytes no text sniffer needs to decode: NUL bytes in the first 4 KiB, more than one (a single
    stray NUL in a damaged chat is still text) and not the every-other-byte NULs of UTF-16 text.
    Decoding and splitting a binary head costs a text sniffer ~300-500 us; this costs ~1 us."""
    window = head[:4096]
    nuls = window.count(0)
    return 1 < nuls < len(window) // 8 and not window.startswith((b"\xff\xfe", b"\xfe\xff"))


# Asks the person at the keyboard for a secret (a password); the CLI supplies it, a library caller may not.
# A source that needs one asks only once it knows the secret can go somewhere safe (IMAP: after the
# server's certificate is checked), so an unreachable server is said before anyone types a secret.
AskSecret = Callable[[str], str]


class Adapter:
    name: ClassVar[str]
    cli_options: ClassVar[tuple[Option, ...]] = ()

    def __init__(self, options: dict | None = None):
        self.options = options or {}

    @classmethod
    def check_options(cls, options: dict, ask_secret: AskSecret | None = None) -> dict:
        """Complete and check options given on the command line; raise UsageError when wrong."""
        return options


class Source(Adapter):
    # True when every Original's stream is its own (its own open file, its own bytes), so the
    # pipeline may store one on a second thread while the source finds the next. Streams cut from
    # one shared file handle (messages in an mbox) must leave this False.
    separate_streams: ClassVar[bool] = False

    def __init__(self, paths: list[Path] | None = None, options: dict | None = None):
        super().__init__(options)
        self.paths = [Path(p) for p in paths or []]

    def originals(self, ctx: Context) -> Iterator[Original]:
        raise NotImplementedError


class Parser(Adapter):
    version: ClassVar[str]
    # `--source` presets this parser serves: preset name -> source name.
    presets: ClassVar[dict[str, str]] = {}
    # Higher wins when several parsers sniff yes (the generic file parser is lowest).
    priority: ClassVar[int] = 0

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    def sniff(self, head: bytes, filename: str | None) -> bool:
        return False

    def apart(self, stored: StoredOriginal) -> bool:
        """May a large original be parsed in a second process (ingest/apart.py)? Only when what
        it yields is plain data (a Child's bytes, never an opener of a zip member) and a parse
        gives the same items each time. Anything else still works there, only slower."""
        return False

    def prefetch(self, stored: StoredOriginal, ctx: Context) -> None:
        """Called a little ahead of `parse` so slow work (OCR) can start in parallel."""

    @property
    def prefetches(self) -> bool:
        """Does `prefetch` start anything? (If not, the pipeline need not read ahead for it.)"""
        return type(self).prefetch is not Parser.prefetch

    def parse(self, stored: StoredOriginal, ctx: Context) -> Iterator[Record | Child | ParseWarning | NotThisFormat]:
        """Yield what the original means. An original that is not this parser's format at all
        (a photo given as a WhatsApp chat) yields `NotThisFormat` first and nothing else: the
        pipeline then finds the parser that reads it, and the record names both."""
        raise NotImplementedError
