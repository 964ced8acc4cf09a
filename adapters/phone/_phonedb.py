"""Rows of a phone's own SQLite database (Android mmssms.db, contacts2.db / calllog.db),
read from the stored copy without changing a byte of it.

Each row comes as a dict of strings, the shape of an SMS Backup & Restore element
(that app dumps these very columns), so one record builder serves both. NULL becomes
the app's "null"; blobs are left out.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote

from ingest.model.records import ParseWarning

SQLITE_MAGIC = b"SQLite format 3\x00"


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
