"""Rows of a phone's own SQLite database (Android mmssms.db, contacts2.db / calllog.db),
read from the stored copy without changing a byte of it.

Each row comes as a dict of strings, the shape of an SMS Backup & Restore element
(that app dumps these very columns), so one record builder serves both. NULL becomes
the app's "null"; blobs are left out.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote

from ingest.model.records import ParseWarning

SQLITE_MAGIC = b"SQLite format 3\x00"
MESSAGE_TABLES = ({"sms"}, {"message", "handle"})      # Android mmssms.db; iOS/macOS Messages chat.db
CALL_TABLES = ({"calls"}, {"ZCALLRECORD"})             # Android calllog.db/contacts2.db; iOS CallHistory.storedata
_CREATE_TABLE = re.compile(rb'CREATE TABLE (?:IF NOT EXISTS )?["`\[]?(\w+)', re.I)
_LEAF_TABLE_PAGE = 0x0D


def head_tables(head: bytes) -> set[str] | None:
    """The tables a SQLite database declares, read from its first page (whatever the file is
    called); None when that page does not hold the whole schema (a large one continues on later
    pages), so the tables are only known by opening it."""
    if not head.startswith(SQLITE_MAGIC) or len(head) < 101:
        return None
    if head[100] != _LEAF_TABLE_PAGE:
        return None
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if len(head) < page_size:
        return None
    return {name.decode("ascii", "replace") for name in _CREATE_TABLE.findall(head[:page_size])}


def holds(tables: set[str], kinds: tuple[set[str], ...]) -> bool:
    return any(kind <= tables for kind in kinds)


def sniff_database(head: bytes, mine: tuple[set[str], ...], theirs: tuple[set[str], ...]) -> bool:
    """A database whose first page shows one of `mine` table sets; or one whose schema is not on
    its first page and does not show `theirs` there (the parser then opens it and hands it on)."""
    if not head.startswith(SQLITE_MAGIC):
        return False
    tables = head_tables(head)
    if tables is None:
        visible = {name.decode("ascii", "replace") for name in _CREATE_TABLE.findall(head)}
        return holds(visible, mine) or not holds(visible, theirs)
    return holds(tables, mine)


class NotReadable(Exception):
    """The database cannot be opened, or lacks the table asked for."""


def connect(path: Path) -> sqlite3.Connection:
    # immutable=1: no journal, no lock file, no write of any kind, even beside a read-only file
    return sqlite3.connect(f"file:{quote(str(path))}?mode=ro&immutable=1", uri=True)


def tables(path: Path) -> set[str]:
    try:
        with closing(connect(path)) as db:
            return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as error:
        raise NotReadable(f"the database could not be opened ({error})") from None


def count(path: Path, table: str) -> int:
    """Rows in `table`; 0 when there is no such table."""
    try:
        with closing(connect(path)) as db:
            return db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    except sqlite3.DatabaseError:
        return 0


def rows(path: Path, table: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(rowid, row) in rowid order, streamed from a cursor."""
    for row in select(path, f'SELECT rowid AS "rowid ", * FROM "{table}" ORDER BY rowid'):
        yield int(row.pop("rowid ")), row


def select(path: Path, sql: str) -> Iterator[dict[str, str]]:
    """The rows of a query, streamed from a cursor, as dicts of strings."""
    try:
        with closing(connect(path)) as db:
            cursor = db.execute(sql)
            names = [column[0] for column in cursor.description]
            for values in cursor:
                yield {name: "null" if value is None else str(value)
                       for name, value in zip(names, values) if not isinstance(value, bytes)}
    except sqlite3.DatabaseError as error:
        raise NotReadable(f"the database stopped being readable ({error})") from None


class TableRead:
    """Reads one table's rows into records, counting them and noting whether reading failed."""

    def __init__(self):
        self.read = 0
        self.fatal = False

    def records(self, path: Path, table: str, what: str, make: Callable[[dict, str], object]) -> Iterator:
        """make(row, locator) for each row; the warnings from `table_items` pass through."""
        for item in table_items(path, table, what):
            if isinstance(item, ParseWarning):
                self.fatal = self.fatal or item.fatal
                yield item
                continue
            self.read += 1
            yield make(item[1], item[0])


def table_items(path: Path, table: str, what: str) -> Iterator[tuple[str, dict[str, str]] | ParseWarning]:
    """(locator, row) for each row of `table`, or a warning saying plainly why not."""
    try:
        if table not in tables(path):
            yield ParseWarning(f"This is a database file (SQLite) with no {table!r} table, so not {what}; it is "
                               "kept exactly as it is, but nothing in it was read.", fatal=True)
            return
        for rowid, row in rows(path, table):
            yield f"table {table}, row {rowid}", row
    except NotReadable as error:
        yield ParseWarning(f"This database could not be read to its end: {error}. It is kept exactly as it is.")
