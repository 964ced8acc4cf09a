"""SQLite index of a case: originals, records, per-source state and full-text search.

WAL mode; the schema is versioned with `PRAGMA user_version` and moved forward by
MIGRATIONS, one step at a time, never backwards.

Longer than 600 lines on purpose: all SQL of the project lives here, so that no other
module writes a query and the schema is read in one place.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Iterator

from ingest.model.records import read_body

MIGRATIONS = [
    # 1: the first schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE objects (
        blake3 TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
        media_type TEXT, role TEXT NOT NULL, stored_at TEXT NOT NULL);
    CREATE TABLE originals (
        source_key TEXT NOT NULL, blake3 TEXT NOT NULL, adapter TEXT NOT NULL,
        parser TEXT, filename TEXT, fingerprint TEXT, source_meta TEXT NOT NULL,
        acquired_at TEXT NOT NULL, parent_record TEXT, kind_hint TEXT, depth INTEGER NOT NULL,
        complete INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (source_key, blake3));
    CREATE INDEX originals_by_object ON originals(blake3);
    CREATE TABLE records (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, sort_time TEXT NOT NULL,
        blake3 TEXT NOT NULL, source_key TEXT NOT NULL, locator TEXT, parser TEXT NOT NULL,
        parent TEXT, identity TEXT, superseded_by TEXT, body TEXT NOT NULL);
    CREATE INDEX records_by_time ON records(sort_time);
    CREATE INDEX records_by_object ON records(blake3);
    CREATE INDEX records_by_identity ON records(identity);
    CREATE INDEX records_by_parent ON records(parent);
    CREATE VIRTUAL TABLE records_fts USING fts5(id UNINDEXED, content, tokenize='unicode61 remove_diacritics 2');
    CREATE TABLE derived (
        original TEXT NOT NULL, type TEXT NOT NULL, tool TEXT NOT NULL, blake3 TEXT NOT NULL,
        PRIMARY KEY (original, type, tool));
    CREATE TABLE source_state (
        source TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (source, key));
    """,
    # 2: parties (people and their identifiers) and marks (overlays on records, never changing them)
    """
    CREATE TABLE parties (
        name TEXT PRIMARY KEY COLLATE NOCASE, me INTEGER NOT NULL DEFAULT 0, note TEXT, added_at TEXT NOT NULL);
    CREATE TABLE party_identifiers (
        value TEXT PRIMARY KEY, type TEXT NOT NULL, shown TEXT NOT NULL,
        party TEXT NOT NULL COLLATE NOCASE REFERENCES parties(name), added_at TEXT NOT NULL);
    CREATE INDEX party_identifiers_by_party ON party_identifiers(party);
    CREATE TABLE marks (
        record TEXT NOT NULL, mark TEXT NOT NULL, reference TEXT, marked_at TEXT NOT NULL, unmarked_at TEXT);
    CREATE INDEX marks_by_record ON marks(record);
    """,
    # 3: exhibit marks (SP/1, SP/3 item 2): given once to each original, never changed or reused
    """
    CREATE TABLE exhibits (
        blake3 TEXT PRIMARY KEY, mark INTEGER NOT NULL, item INTEGER NOT NULL, given_at TEXT NOT NULL,
        UNIQUE (mark, item));
    """,
    # 4: an original's row is written only in the commit that completes it, so a "complete" flag
    # was always 1 and said nothing
    """
    ALTER TABLE originals DROP COLUMN complete;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
# superseded_by of records a reparse has made but not yet finished: hidden like superseded ones
PENDING = "(reparse not finished)"
# A record that is an event at a known time: not a container's own record, not time unknown.
TIMED_EVENT = "sort_time != '' AND json_extract(body, '$.metadata.container') IS NULL"
# Who a record's conversation is with: a WhatsApp chat is one conversation; in an SMS backup or call
# log, the other party (the sender of what came in, the recipients of what went out).
CONVERSATION = ("(CASE WHEN {r}.kind = 'whatsapp' THEN '' WHEN json_extract({r}.body, '$.direction') = 'outgoing' "
                "THEN json_extract({r}.body, '$.to') ELSE json_extract({r}.body, '$.from') END)")
# A record that is an event of its own (see Index.incidents), as SQL over `records r`.
INCIDENT = ("r.superseded_by IS NULL AND r.kind NOT IN ('attachment', 'unparsed') "
            "AND r.sort_time != '' AND json_extract(r.body, '$.metadata.container') IS NULL "
            "AND NOT (r.locator IS NULL AND r.parent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM records p "
            "WHERE p.id = r.parent AND json_extract(p.body, '$.metadata.container') IS NOT NULL)) "
            "AND NOT (r.locator IS NULL AND EXISTS (SELECT 1 FROM records c WHERE c.blake3 = r.blake3 "
            "AND c.source_key = r.source_key AND c.locator IS NOT NULL AND c.superseded_by IS NULL))")


BACKSTOP_PAGES = 16384     # 64 MiB of WAL: past this the writer checkpoints (see _Checkpointer)


class _Checkpointer:
    """Copies committed pages from the WAL into the database file, on its own connection and
    thread, after each commit (a passive checkpoint never blocks the writer, and SQLite runs it
    without the GIL). Measured on 100k SMS: commits took 2.9 s with the writer checkpointing
    itself, 0.6 s without. Nothing depends on it: a page not yet copied is read from the WAL,
    and the last connection to close copies the rest."""

    def __init__(self, path: Path):
        self.path = path
        self.wanted = threading.Event()
        self.stopping = False
        self.thread = threading.Thread(target=self._work, name="index checkpoint", daemon=True)
        self.thread.start()

    def nudge(self) -> None:
        self.wanted.set()

    def stop(self) -> None:
        self.stopping = True
        self.wanted.set()
        self.thread.join()

    def _work(self) -> None:
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, isolation_level=None)
        except sqlite3.Error:      # the writer checkpoints itself past BACKSTOP_PAGES
            return
        with closing(db):
            while True:
                self.wanted.wait()
                self.wanted.clear()
                if self.stopping:
                    return
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:     # busy, or the disk: the writer's own commits tell
                    pass


class Index:
    def __init__(self, path: Path, *, readonly: bool = False, cache_mib: int = 32):
        self.path = path
        # A folder nobody may write to (a write-blocked copy, a read-only mount) cannot hold the
        # WAL's shared-memory file, so the database is read as immutable: nothing can change it.
        immutable = readonly and not os.access(path.parent, os.W_OK)
        uri = f"file:{path}?mode=ro" + ("&immutable=1" if immutable else "") if readonly else f"file:{path}"
        self.db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        self._checkpointer: _Checkpointer | None = None
        self.db.row_factory = sqlite3.Row
        if not readonly:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            # 32 MiB of pages (the default is 2): a record updates five b-trees and the FTS index, and
            # past ~100k records their pages no longer fit. 400k WhatsApp messages: 66 -> 56 s, peak
            # 72 -> 122 MiB; the pipeline's committing connection takes 64 (inserts 8.9 -> 7.2 s,
            # commits 3.8 -> 2.7 s). A bound that does not grow with the case.
            self.db.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
            # Copying the WAL into the database (and its fsync) is done on a second connection,
            # on a second thread, while this one goes on; the writer checkpoints itself only past
            # BACKSTOP_PAGES, should that thread ever fall behind.
            self.db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
            self.migrate()
        elif self.version() != SCHEMA_VERSION:
            from ingest.model.errors import CaseError
            raise CaseError(f"The case index is at schema {self.version()}, this ingest reads {SCHEMA_VERSION}.",
                            hint="Run any writing command (such as `ingest verify`) with this version to upgrade it.")

    def version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        current = self.version()
        for number, script in enumerate(MIGRATIONS[current:], current + 1):
            # one step, atomically: the schema and its version number change together
            try:
                self.db.executescript(f"BEGIN IMMEDIATE; {script}; PRAGMA user_version={number}; COMMIT;")
            except sqlite3.Error:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.db.close()

    @contextmanager
    def transaction(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")
            if self._checkpointer is None:
                self._checkpointer = _Checkpointer(self.path)
            self._checkpointer.nudge()
        except BaseException:
            # SQLite may already have rolled back (a full disk does): never hide the cause behind
            # "cannot rollback - no transaction is active".
            if self.db.in_transaction:
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass    # the first error is the one to report
            raise

    # meta --------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta(key, value) VALUES(?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))

    def custody_tail(self) -> tuple[int, str | None]:
        return int(self.get_meta("custody_lines", "0")), self.get_meta("custody_head")

    def custody_checkpoint(self) -> tuple[int, str | None, int | None, str | None]:
        """(lines, last line's hash, bytes, BLAKE3 of those bytes) of the log as last committed."""
        size = self.get_meta("custody_bytes")
        return (*self.custody_tail(), int(size) if size is not None else None, self.get_meta("custody_prefix"))

    def set_custody_checkpoint(self, lines: int, head: str, size: int, prefix: str) -> None:
        self.set_meta("custody_lines", str(lines))
        self.set_meta("custody_head", head)
        self.set_meta("custody_bytes", str(size))
        self.set_meta("custody_prefix", prefix)

    # objects and originals ----------------------------------------------
    def add_objects(self, rows: list[tuple]) -> None:
        """rows: (digest, media_type, role, stored_at)."""
        self.db.executemany("INSERT OR IGNORE INTO objects VALUES(?,?,?,?,?,?)",
                            [(digest.blake3, digest.sha256, digest.size, media_type, role, stored_at)
                             for digest, media_type, role, stored_at in rows])

    def object(self, blake3_hex: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM objects WHERE blake3=?", (blake3_hex,)).fetchone()

    def objects(self) -> Iterator[sqlite3.Row]:
        yield from self.db.execute("SELECT * FROM objects ORDER BY blake3")

    def held(self, source_key: str, fingerprint: str | None = None) -> bool:
        """Has this source key been acquired (with this fingerprint, if given)? A row is written only
        in the commit that completes its original."""
        sql = "SELECT 1 FROM originals WHERE source_key=?"
        args: tuple = (source_key,)
        if fingerprint is not None:
            sql += " AND fingerprint=?"
            args += (fingerprint,)
        return self.db.execute(sql + " LIMIT 1", args).fetchone() is not None

    def object_parsed(self, blake3_hex: str, *, outside: str | None = None) -> bool:
        """Has the case read these bytes (`outside`: as or inside another original than the one
        known by that source key)?"""
        if outside is None:
            return self.db.execute("SELECT 1 FROM originals WHERE blake3=? LIMIT 1",
                                   (blake3_hex,)).fetchone() is not None
        return self.db.execute("SELECT 1 FROM originals WHERE blake3=? AND source_key!=? "
                               "AND substr(source_key, 1, ?)!=? LIMIT 1",
                               (blake3_hex, outside, len(outside) + 1, outside + "!")).fetchone() is not None

    def add_originals(self, rows: list[dict]) -> None:
        """rows: dicts of source_key, blake3_hex, adapter, parser, filename, fingerprint, source_meta,
        acquired_at, parent_record, kind_hint, depth."""
        self.db.executemany(
            "INSERT INTO originals VALUES(?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(source_key, blake3) "
            "DO UPDATE SET parser=excluded.parser, fingerprint=excluded.fingerprint",
            [(row["source_key"], row["blake3_hex"], row["adapter"], row["parser"], row["filename"], row["fingerprint"],
              json.dumps(row["source_meta"], default=str), row["acquired_at"], row["parent_record"], row["kind_hint"],
              row["depth"]) for row in rows])

    def originals(self, parser: str | None = None) -> Iterator[sqlite3.Row]:
        where, args = ("WHERE parser LIKE ?", (parser + " %",)) if parser else ("", ())
        yield from self.db.execute(f"SELECT * FROM originals {where} ORDER BY depth, acquired_at", args)

    def unread_originals(self, *, source_key: str | None = None, blake3_hex: str | None = None) -> list[sqlite3.Row]:
        """Held originals nobody has truly read: no parser, only the generic file parser, or a
        current record of the whole original that is `unparsed` (a wrong --source). A later run
        naming a parser that accepts them, or a reparse, reads them again."""
        where, args = ["(o.parser IS NULL OR o.parser LIKE 'file %' OR EXISTS (SELECT 1 FROM records r "
                       "WHERE r.blake3=o.blake3 AND r.source_key=o.source_key AND r.locator IS NULL "
                       "AND r.kind='unparsed' AND r.superseded_by IS NULL))"], []
        if source_key is not None:
            where.append("o.source_key=?")
            args.append(source_key)
        if blake3_hex is not None:
            where.append("o.blake3=?")
            args.append(blake3_hex)
        return self.db.execute(
            f"SELECT o.* FROM originals o WHERE {' AND '.join(where)} ORDER BY o.depth, o.acquired_at", args).fetchall()

    # records --------------------------------------------------------------
    def add_records(self, rows: list[tuple], *, pending: str | None = None) -> int:
        """rows: (id, kind, sort_time, blake3, source_key, locator, parser, parent, identity, body_json, fts_text).

        `pending`: the rows go in hidden (superseded_by=pending) until `take_over` makes them the
        live records of their original, all at once (a reparse killed half-way changes nothing)."""
        # Only records new to the index get a full-text row. Which ones are new is asked of the
        # records' primary key: FTS5 cannot look up its UNINDEXED `id` (a check there scanned the
        # whole table per row, quadratic), and even a rowid check inside FTS5 costs ~40 us a row.
        held: set[str] = set()
        ids = [row[0] for row in rows]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            held.update(found for (found,) in self.db.execute(
                f"SELECT id FROM records WHERE id IN ({','.join('?' * len(chunk))})", chunk))
        before = self.db.total_changes
        self.db.executemany(
            "INSERT OR IGNORE INTO records(id, kind, sort_time, blake3, source_key, locator, parser, parent, identity, body, "
            "superseded_by) VALUES(?,?,?,?,?,?,?,?,?,?,?)", [(*row[:10], pending) for row in rows])
        added = self.db.total_changes - before
        fts = []
        for row in rows:
            if row[0] not in held:
                held.add(row[0])     # a repeat within this batch was ignored above, and is here
                if row[10]:
                    fts.append((row[0], row[10]))
        if fts:
            self.db.executemany("INSERT INTO records_fts(id, content) VALUES(?, ?)", fts)
        return added

    def identities_held(self, identities: set[str]) -> dict[str, str]:
        """identity -> id of a live record holding it, for those of `identities` the case holds."""
        found: dict[str, str] = {}
        wanted = list(identities)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            for identity, record in self.db.execute(
                    f"SELECT identity, id FROM records WHERE identity IN ({','.join('?' * len(chunk))}) "
                    "AND superseded_by IS NULL", chunk):
                found.setdefault(identity, record)
        return found

    def take_over(self, blake3_hex: str, source_key: str, parser: str, pending: str) -> int:
        """In one transaction: the records `parser` made from this original become live, every
        other live record of it is superseded by them. Returns how many were superseded."""
        cursor = self.db.execute(
            "UPDATE records SET superseded_by=? WHERE blake3=? AND source_key=? AND parser!=? AND superseded_by IS NULL",
            (parser, blake3_hex, source_key, parser))
        self.db.execute("UPDATE records SET superseded_by=NULL WHERE blake3=? AND source_key=? AND parser=? "
                        "AND superseded_by=?", (blake3_hex, source_key, parser, pending))
        return cursor.rowcount

    def record_set(self, blake3_hex: str, source_key: str, parser: str) -> tuple[int, str]:
        """(count, SHA-256 of the ids in byte order, one per line) of the records `parser` made from
        this original: what its custody line commits to. Also `sort -u ids | sha256sum`."""
        digest = hashlib.sha256()
        count = 0
        rows = self.db.execute("SELECT id FROM records WHERE blake3=? AND source_key=? AND parser=? ORDER BY id",
                               (blake3_hex, source_key, parser))
        while chunk := rows.fetchmany(10_000):     # hashed 10,000 ids at a time: bounded, and ~5x faster
            digest.update("".join([f"{found}\n" for (found,) in chunk]).encode())
            count += len(chunk)
        return count, digest.hexdigest()

    def record_groups(self) -> Iterator[sqlite3.Row]:
        """(blake3, source_key, parser, records, pending) for every original and parser with records."""
        yield from self.db.execute("SELECT blake3, source_key, parser, count(*) AS records, "
                                   "max(superseded_by = ?) AS pending FROM records GROUP BY blake3, source_key, parser",
                                   (PENDING,))

    def record_places(self) -> Iterator[sqlite3.Row]:
        yield from self.db.execute("SELECT id, source_key, blake3, locator, parser FROM records")

    def record(self, record_id: str) -> dict | None:
        rows = self.db.execute("SELECT body, superseded_by FROM records WHERE id LIKE ? LIMIT 2",
                               (record_id + "%",)).fetchall()
        if len(rows) != 1:
            return None
        return _body(rows[0])

    def records(self, *, kinds: list[str] | None = None, since: str | None = None, until: str | None = None,
                identifiers: list[str] | None = None, within: str | None = None,
                include_superseded: bool = False) -> Iterator[dict]:
        """Records in time order, streamed from the database (never all in memory).

        `identifiers` keeps those with any of them in from/to (see `_involving`); `within`
        keeps those whose ids are in that temporary table (see `select_with_family`)."""
        where, params = _filters(kinds=kinds, since=since, until=until, identifiers=identifiers, within=within)
        if not include_superseded:
            where.append("superseded_by IS NULL")
        cursor = self.db.cursor()
        # Equal times keep the order they were read in (messages in the same minute of a chat).
        cursor.execute(f"SELECT body, superseded_by FROM records WHERE {' AND '.join(where) or '1=1'} "
                       "ORDER BY sort_time, rowid", params)
        for row in cursor:
            yield _body(row)

    def page(self, *, kinds: list[str] | None = None, since: str | None = None, until: str | None = None,
             identifiers: list[str] | None = None, match: str | None = None, after: tuple[str, int] | None = None,
             before: tuple[str, int] | None = None, limit: int = 100) -> list[tuple[tuple[str, int], dict]]:
        """One page of current records in time order, each with its place (sort_time, rowid).
        Paged by that place, not by OFFSET, so the last page of 100,000 comes as fast as the first.
        `match` is a full-text query over text and OCR."""
        where, params = _current(kinds, since, until, identifiers, match)
        for place, comparison in ((after, ">"), (before, "<")):
            if place:
                where.append(f"(sort_time, rowid) {comparison} (?, ?)")
                params += list(place)
        order = "DESC" if before else "ASC"
        rows = self.db.execute(f"SELECT body, superseded_by, sort_time, rowid FROM records WHERE {' AND '.join(where)} "
                               f"ORDER BY sort_time {order}, rowid {order} LIMIT ?", params + [limit]).fetchall()
        if before:
            rows.reverse()
        return [((row[2], row[3]), _body(row)) for row in rows]

    def count_matching(self, *, kinds: list[str] | None = None, since: str | None = None, until: str | None = None,
                       identifiers: list[str] | None = None, match: str | None = None, limit: int = -1) -> int:
        """How many current records match, counting no further than `limit` (-1: all)."""
        where, params = _current(kinds, since, until, identifiers, match)
        return self.db.execute(f"SELECT count(*) FROM (SELECT 1 FROM records WHERE {' AND '.join(where)} LIMIT ?)",
                               params + [limit]).fetchone()[0]

    def children(self, record_id: str) -> list[dict]:
        """Records whose parent is this one (a chat's photos, an email's attachments, a note's files)."""
        return [_body(row) for row in self.db.execute(
            "SELECT body, superseded_by FROM records WHERE parent=? AND superseded_by IS NULL ORDER BY sort_time, rowid",
            (record_id,))]

    def counts_by_kind(self, *, within: str | None = None) -> list[tuple[str, int]]:
        """(kind, number of current records), most first."""
        where, params = _filters(within=within)
        return [tuple(row) for row in self.db.execute(
            f"SELECT kind, count(*) FROM records WHERE {' AND '.join(where + ['superseded_by IS NULL'])} "
            "GROUP BY kind ORDER BY count(*) DESC, kind", params)]

    def time_span(self, *, within: str | None = None) -> tuple[str, str] | None:
        """(first, last) sort time of the current records that happened at a known time, or None when
        there are none. A backup's or export's own record is not an event: only its items count."""
        where, params = _filters(within=within)
        row = self.db.execute(f"SELECT min(sort_time), max(sort_time) FROM records "
                              f"WHERE {' AND '.join(where + ['superseded_by IS NULL', TIMED_EVENT])}",
                              params).fetchone()
        return None if row[0] is None else (row[0], row[1])

    def incidents(self, *, within: str | None = None) -> Iterator[tuple[str, str]]:
        """(kind, sort time) of every current record that is an event of its own, streamed.

        Not incidents: attachments and unparsed originals; records without a known time; a
        backup's or export's own record (`metadata.container`); a file found inside another (it
        has a parent but no locator) unless that other is a container (an email in an mbox); a
        container whose items were read (a record of the whole original beside records of places in it)."""
        where, params = _filters(within=within)
        yield from self.db.execute(f"SELECT kind, sort_time FROM records r WHERE {INCIDENT} "
                                   + "".join(f"AND {clause} " for clause in where), params)

    def incident_records(self, *, within: str | None = None) -> Iterator[dict]:
        """The records `incidents` counts, in time order, streamed."""
        where, params = _filters(within=within)
        cursor = self.db.cursor()
        cursor.execute(f"SELECT body, superseded_by FROM records r WHERE {INCIDENT} "
                       + "".join(f"AND {clause} " for clause in where) + "ORDER BY sort_time, rowid", params)
        for row in cursor:
            yield _body(row)

    def note_corrections(self) -> Iterator[tuple[str, str]]:
        """(correcting note id, corrected note id) of every current note that corrects another, in time order."""
        yield from self.db.execute(
            "SELECT id, json_extract(body, '$.metadata.supersedes') FROM records WHERE kind='note' "
            "AND superseded_by IS NULL AND json_extract(body, '$.metadata.supersedes') IS NOT NULL ORDER BY sort_time")

    def original_owner(self, blake3_hex: str) -> str | None:
        """The id of the record standing for this whole original: a current one first, then the lowest id."""
        row = self.db.execute("SELECT id FROM records WHERE blake3=? AND locator IS NULL "
                              "ORDER BY superseded_by IS NOT NULL, id LIMIT 1", (blake3_hex,)).fetchone()
        return row[0] if row else None

    # temporary tables (this connection only, gone when it closes) -----------
    def select_with_family(self, table: str, *, kinds: list[str] | None = None, since: str | None = None,
                           until: str | None = None, identifiers: list[str] | None = None,
                           conversations: bool = False) -> None:
        """Put the ids of the matching current records, their children (down to the bottom) and
        their parents (up to the top) into the temporary table `table`, for `within=`. With
        `conversations`, the rest of each conversation a matching record is part of goes in too
        (see `_add_conversations`), before the families are added.

        With `identifiers` (a party's), a WhatsApp chat one of whose messages matches goes in
        whole: a chat is one conversation, and the owner's replies in it go with what they answer."""
        self.drop_temporary(table)
        self.db.execute(f"CREATE TEMP TABLE {table} (id TEXT PRIMARY KEY)")
        where, params = _filters(kinds=kinds, since=since, until=until)
        chosen, chosen_params = _filters(identifiers=identifiers)
        self.db.execute(f"INSERT INTO temp.{table} SELECT id FROM records "
                        f"WHERE {' AND '.join(['superseded_by IS NULL'] + where + chosen)}", params + chosen_params)
        if identifiers is not None:
            chats = ["r.superseded_by IS NULL", "r.kind = 'whatsapp'"] + where
            self.db.execute(
                f"INSERT OR IGNORE INTO temp.{table} SELECT r.id FROM records r JOIN (SELECT DISTINCT c.blake3, "
                f"c.source_key FROM records c JOIN temp.{table} s ON s.id = c.id WHERE c.kind = 'whatsapp') chat "
                f"ON r.blake3 = chat.blake3 AND r.source_key = chat.source_key WHERE {' AND '.join(chats)}", params)
        if conversations:
            self._add_conversations(table)
        self._add_family(table)

    def _add_conversations(self, table: str) -> None:
        """Add to the temporary table `table` every current record of each conversation it holds part of:
        a whole WhatsApp chat, or every message and call with the same other party in the same SMS
        backup or call log."""
        self.db.execute(
            f"INSERT OR IGNORE INTO temp.{_identifier(table)} SELECT r.id FROM records r JOIN (SELECT DISTINCT "
            f"c.blake3, c.source_key, {CONVERSATION.format(r='c')} AS other FROM records c JOIN temp.{table} s "
            f"ON s.id = c.id WHERE c.locator IS NOT NULL AND c.kind IN ('whatsapp', 'sms', 'mms', 'call')) chat "
            f"ON r.blake3 = chat.blake3 AND r.source_key = chat.source_key AND {CONVERSATION.format(r='r')} = chat.other "
            "WHERE r.superseded_by IS NULL AND r.locator IS NOT NULL")

    def records_outside(self, table: str) -> Iterator[dict]:
        """The current records whose ids are not in the temporary table `table`, streamed."""
        cursor = self.db.cursor()
        cursor.execute("SELECT body, superseded_by FROM records WHERE superseded_by IS NULL "
                       f"AND id NOT IN (SELECT id FROM temp.{_identifier(table)})")
        for row in cursor:
            yield _body(row)

    def _add_family(self, table: str) -> None:
        # children first (of what was chosen), then parents (of what was chosen and its children)
        self.db.execute(f"WITH RECURSIVE down(id) AS (SELECT id FROM temp.{table} UNION "
                        "SELECT r.id FROM records r JOIN down ON r.parent = down.id WHERE r.superseded_by IS NULL) "
                        f"INSERT OR IGNORE INTO temp.{table} SELECT id FROM down")
        self.db.execute(f"WITH RECURSIVE up(id) AS (SELECT r.parent FROM records r JOIN temp.{table} s "
                        "ON r.id = s.id WHERE r.parent IS NOT NULL UNION "
                        "SELECT r.parent FROM records r JOIN up ON r.id = up.id WHERE r.parent IS NOT NULL) "
                        f"INSERT OR IGNORE INTO temp.{table} SELECT id FROM up")

    def temporary_map(self, table: str) -> TemporaryMap:
        """An empty key -> value map in the temporary table `table`."""
        self.drop_temporary(table)
        self.db.execute(f"CREATE TEMP TABLE {table} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        return TemporaryMap(self.db, table)

    def drop_temporary(self, table: str) -> None:
        self.db.execute(f"DROP TABLE IF EXISTS temp.{_identifier(table)}")

    def count_records(self) -> int:
        return self.db.execute("SELECT count(*) FROM records WHERE superseded_by IS NULL").fetchone()[0]

    def own_records(self, blake3_hex: str) -> list[dict]:
        """The records that stand for an original itself (not for a message inside it)."""
        return [_body(row) for row in self.db.execute(
            "SELECT body, superseded_by FROM records WHERE blake3=? AND locator IS NULL AND superseded_by IS NULL "
            "ORDER BY sort_time, rowid", (blake3_hex,))]

    def record_objects(self) -> Iterator[tuple[str, str]]:
        yield from self.db.execute("SELECT id, blake3 FROM records")

    def search(self, query: str) -> Iterator[tuple[dict, str]]:
        cursor = self.db.execute(
            "SELECT r.body, r.superseded_by, snippet(records_fts, 1, '[', ']', '…', 12) FROM records_fts "
            "JOIN records r ON r.id = records_fts.id WHERE records_fts MATCH ? AND r.superseded_by IS NULL "
            "ORDER BY r.sort_time", (query,))
        for row in cursor:
            yield _body(row), row[2]

    # derived artifacts and source state -----------------------------------
    def derived(self, original: str, type_: str, tool: str) -> str | None:
        row = self.db.execute("SELECT blake3 FROM derived WHERE original=? AND type=? AND tool=?",
                              (original, type_, tool)).fetchone()
        return row[0] if row else None

    def add_derived(self, original: str, type_: str, tool: str, blake3_hex: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO derived VALUES(?,?,?,?)", (original, type_, tool, blake3_hex))

    def derived_objects(self) -> Iterator[str]:
        yield from (row[0] for row in self.db.execute("SELECT blake3 FROM derived"))

    def get_state(self, source: str, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM source_state WHERE source=? AND key=?", (source, key)).fetchone()
        return row[0] if row else None

    def set_state(self, source: str, key: str, value: str) -> None:
        self.db.execute("INSERT INTO source_state VALUES(?,?,?) ON CONFLICT(source, key) "
                        "DO UPDATE SET value=excluded.value", (source, key, value))

    # parties and marks ---------------------------------------------------------------
    def add_party(self, name: str, me: bool, note: str | None, added_at: str) -> None:
        self.db.execute("INSERT INTO parties VALUES(?,?,?,?)", (name, int(me), note, added_at))

    def party(self, name: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM parties WHERE name=?", (name,)).fetchone()

    def parties(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM parties ORDER BY me DESC, name").fetchall()

    def add_identifiers(self, party: str, identifiers: list[tuple[str, str, str]], added_at: str) -> None:
        """identifiers: (type, value as matched, value as typed)."""
        self.db.executemany("INSERT INTO party_identifiers VALUES(?,?,?,?,?)",
                            [(value, type_, shown, party, added_at) for type_, value, shown in identifiers])

    def identifiers(self) -> list[sqlite3.Row]:
        """Every identifier with its party's name and whether that party is the case owner."""
        return self.db.execute(
            "SELECT i.value, i.type, i.shown, p.name AS party, p.me FROM party_identifiers i "
            "JOIN parties p ON p.name = i.party ORDER BY p.name, i.type, i.added_at, i.value").fetchall()

    def contacts(self, values: list[str], table: str | None = None) -> Iterator[tuple[str, str, str, bool]]:
        """(id, kind, sort_time, timed) of the current messages and calls *from* any of `values`,
        in time order (`timed`: the source gave a time, so sort_time is not the acquisition time);
        `table` keeps only ids in that temporary table."""
        if not values:
            return
        within = f"AND id IN (SELECT id FROM temp.{_identifier(table)})" if table else ""
        yield from self.db.execute(
            "SELECT id, kind, sort_time, json_extract(body, '$.occurred_at_source') NOT LIKE 'unknown%' FROM records "
            f"WHERE superseded_by IS NULL AND kind IN ('sms', 'mms', 'call', 'whatsapp', 'email') {within} "
            f"AND EXISTS (SELECT 1 FROM json_each(body, '$.from') WHERE lower(value) IN "
            f"({','.join('?' * len(values))})) ORDER BY sort_time, rowid", values)

    def add_mark(self, record: str, mark: str, reference: str | None, marked_at: str) -> None:
        self.db.execute("INSERT INTO marks VALUES(?,?,?,?,NULL)", (record, mark, reference, marked_at))

    def remove_mark(self, record: str, mark: str, unmarked_at: str) -> int:
        return self.db.execute("UPDATE marks SET unmarked_at=? WHERE record=? AND mark=? AND unmarked_at IS NULL",
                               (unmarked_at, record, mark)).rowcount

    def marks(self, record: str | None = None) -> list[sqlite3.Row]:
        """Marks in force (on one record, or all), each with its record's time, from and to (JSON),
        oldest record first."""
        sql = ("SELECT m.record, m.mark, m.reference, m.marked_at, r.sort_time, "
               "json_extract(r.body, '$.occurred_at') AS occurred_at, json_extract(r.body, '$.from') AS from_json, "
               "json_extract(r.body, '$.to') AS to_json FROM marks m "
               "JOIN records r ON r.id = m.record WHERE m.unmarked_at IS NULL")
        args: tuple = ()
        if record:
            sql += " AND m.record = ?"
            args = (record,)
        return self.db.execute(sql + " ORDER BY r.sort_time, m.rowid", args).fetchall()

    # what suggests links between identifiers (aggregated here, so only distinct pairs leave SQL)
    def names_by_number(self) -> list[sqlite3.Row]:
        """(number, contact name, records) as phone backups and call logs name them."""
        return self.db.execute(
            "SELECT j.value AS number, json_extract(r.body, '$.metadata.contact_name') AS name, count(*) AS records "
            "FROM records r, json_tree(json_extract(r.body, '$.from', '$.to')) j WHERE r.superseded_by IS NULL "
            "AND r.kind IN ('sms', 'mms', 'call') AND j.type = 'text' AND j.atom LIKE '+%' AND name IS NOT NULL "
            "AND name != '' "
            "GROUP BY 1, 2 ORDER BY 1, 2").fetchall()

    def chat_senders(self) -> list[sqlite3.Row]:
        """(chat file name, source key, sender as written, messages) of WhatsApp chats."""
        return self.db.execute(
            "SELECT json_extract(body, '$.original.filename') AS filename, source_key, "
            "json_extract(body, '$.metadata.sender') AS sender, count(*) AS records FROM records "
            "WHERE superseded_by IS NULL AND kind = 'whatsapp' AND sender IS NOT NULL "
            "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3").fetchall()

    def email_names(self) -> list[sqlite3.Row]:
        """(address, display name, records) as email headers write them."""
        return self.db.execute(
            "SELECT j.key AS address, j.value AS name, count(*) AS records FROM records r, "
            "json_each(r.body, '$.metadata.names') j WHERE r.superseded_by IS NULL AND r.kind = 'email' "
            "GROUP BY 1, 2 ORDER BY 1, 2").fetchall()

    # exhibit marks ------------------------------------------------------------
    def originals_without_exhibit(self, limit: int) -> list[tuple[str, str | None]]:
        """(blake3, blake3 of the original it was found in, or None) of up to `limit` kept originals with
        no exhibit mark yet, parents before children, each in the order first acquired."""
        return [tuple(row) for row in self.db.execute(
            "SELECT o.blake3, (SELECT p.blake3 FROM records p WHERE p.id = o.parent_record) FROM originals o "
            "WHERE NOT EXISTS (SELECT 1 FROM exhibits e WHERE e.blake3 = o.blake3) "
            "GROUP BY o.blake3 ORDER BY min(o.depth), min(o.acquired_at), min(o.rowid) LIMIT ?", (limit,))]

    def exhibit(self, blake3_hex: str) -> tuple[int, int] | None:
        """(mark number, item number: 0 for the exhibit itself) of an original."""
        row = self.db.execute("SELECT mark, item FROM exhibits WHERE blake3=?", (blake3_hex,)).fetchone()
        return (row[0], row[1]) if row else None

    def last_exhibit_item(self, mark: int | None = None) -> int:
        """The highest mark number given (mark None), or the highest item number within `mark`."""
        if mark is None:
            return self.db.execute("SELECT coalesce(max(mark), 0) FROM exhibits").fetchone()[0]
        return self.db.execute("SELECT coalesce(max(item), 0) FROM exhibits WHERE mark=?", (mark,)).fetchone()[0]

    def give_exhibit(self, blake3_hex: str, mark: int, item: int, given_at: str) -> None:
        self.db.execute("INSERT INTO exhibits VALUES(?,?,?,?)", (blake3_hex, mark, item, given_at))

    def exhibits(self, *, within: str | None = None) -> Iterator[sqlite3.Row]:
        """Every exhibit (item 0) in mark order with its object and first acquisition; `within` keeps
        those holding a record whose id is in that temporary table."""
        sql = ("SELECT e.mark, e.blake3, e.given_at, ob.sha256, ob.size, ob.media_type, o.source_key, o.filename, "
               "o.adapter, o.parser, o.acquired_at FROM exhibits e JOIN objects ob ON ob.blake3 = e.blake3 "
               "JOIN originals o ON o.rowid = (SELECT min(rowid) FROM originals WHERE blake3 = e.blake3) "
               "WHERE e.item = 0")
        if within:
            sql += (f" AND EXISTS (SELECT 1 FROM records r JOIN exhibits x ON x.blake3 = r.blake3 WHERE x.mark = e.mark "
                    f"AND r.id IN (SELECT id FROM temp.{_identifier(within)}))")
        yield from self.db.execute(sql + " ORDER BY e.mark")

    def exhibit_contents(self, mark: int, *, within: str | None = None) -> list[tuple]:
        """Per kind over every item of exhibit `mark`: (kind, current records, parts, first, last), where
        parts are all but the record of the exhibit's own original, and first and last are the times of
        the parts (of the own record when there are none)."""
        where, params = _filters(within=within)
        part = "NOT (r.locator IS NULL AND e.item = 0)"
        return [tuple(row) for row in self.db.execute(
            f"SELECT r.kind, count(*), sum({part}), min(nullif(r.sort_time, '')) FILTER (WHERE {part}), "
            f"max(nullif(r.sort_time, '')) FILTER (WHERE {part}), min(nullif(r.sort_time, '')), "
            "max(nullif(r.sort_time, '')) FROM records r "
            "JOIN exhibits e ON e.blake3 = r.blake3 WHERE e.mark = ? AND r.superseded_by IS NULL "
            + "".join(f"AND r.{clause} " for clause in where) + "GROUP BY r.kind ORDER BY count(*) DESC, r.kind",
            [mark] + params)]

    def exhibit_sizes(self, *, within: str | None = None) -> list[tuple[int, int, int]]:
        """(mark, bytes of its originals, current records) of every exhibit holding a record (in `within`)."""
        where, params = _filters(within=within)
        scoped = "".join(f"AND r.{clause} " for clause in where)
        return [tuple(row) for row in self.db.execute(
            "SELECT e.mark, (SELECT sum(ob.size) FROM exhibits x JOIN objects ob ON ob.blake3 = x.blake3 "
            "WHERE x.mark = e.mark), count(r.id) FROM exhibits e JOIN records r ON r.blake3 = e.blake3 "
            f"WHERE r.superseded_by IS NULL {scoped}GROUP BY e.mark ORDER BY e.mark", params)]

    def select_exhibits(self, table: str, marks: list[int], *, within: str | None = None) -> None:
        """Put the ids of the current records of exhibits `marks` (those in `within`, when given), with
        their families, into the temporary table `table`."""
        self.drop_temporary(table)
        self.db.execute(f"CREATE TEMP TABLE {_identifier(table)} (id TEXT PRIMARY KEY)")
        where, params = _filters(within=within)
        for start in range(0, len(marks), 500):
            chunk = marks[start:start + 500]
            self.db.execute(
                f"INSERT OR IGNORE INTO temp.{table} SELECT r.id FROM records r JOIN exhibits e ON e.blake3 = r.blake3 "
                f"WHERE r.superseded_by IS NULL AND e.mark IN ({','.join('?' * len(chunk))}) "
                + "".join(f"AND r.{clause} " for clause in where), chunk + params)
        self._add_family(table)

    def exhibit_items(self, mark: int) -> Iterator[sqlite3.Row]:
        """The originals found inside exhibit `mark` (item 1, 2...) with their hashes."""
        yield from self.db.execute(
            "SELECT e.item, e.blake3, ob.sha256, ob.size, (SELECT filename FROM originals o WHERE o.blake3 = e.blake3 "
            "LIMIT 1) AS filename FROM exhibits e JOIN objects ob ON ob.blake3 = e.blake3 WHERE e.mark = ? AND e.item > 0 "
            "ORDER BY e.item", (mark,))


class TemporaryMap:
    """Keys to values in a temporary table, so memory stays flat however many there are."""

    def __init__(self, db: sqlite3.Connection, table: str):
        self.db = db
        self.table = table

    def get(self, key: str) -> str | None:
        row = self.db.execute(f"SELECT value FROM temp.{self.table} WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, value: str) -> None:
        self.db.execute(f"INSERT INTO temp.{self.table} VALUES(?, ?)", (key, value))


def _identifier(name: str) -> str:
    """A table name is put into SQL text, so it must be a plain identifier."""
    if not name.isidentifier() or not name.isascii():
        raise ValueError(f"not a table name: {name!r}")
    return name


def _filters(*, kinds: list[str] | None = None, since: str | None = None, until: str | None = None,
             identifiers: list[str] | None = None, within: str | None = None) -> tuple[list[str], list]:
    """WHERE clauses (to be joined with AND) and their parameters for the record filters."""
    where: list[str] = []
    params: list = []
    if kinds:
        where.append(f"kind IN ({','.join('?' * len(kinds))})")
        params += kinds
    if since:
        where.append("sort_time >= ?")
        params.append(since)
    if until:
        where.append("sort_time < ?")
        params.append(until)
    if identifiers is not None:
        where.append(_involving(len(identifiers)))
        params += identifiers
    if within:
        where.append(f"id IN (SELECT id FROM temp.{_identifier(within)})")
    return where, params


def _current(kinds, since, until, identifiers, match) -> tuple[list[str], list]:
    """The record filters over current records, with an optional full-text query."""
    where, params = _filters(kinds=kinds, since=since, until=until, identifiers=identifiers)
    where.append("superseded_by IS NULL")
    if match:
        where.append("id IN (SELECT id FROM records_fts WHERE records_fts MATCH ?)")
        params.append(match)
    return where, params


def _involving(count: int) -> str:
    """Records with any of `count` identifiers in from or to, compared as SQLite's lower() folds
    them (one JSON parse of the body per row); none at all matches nothing."""
    if not count:
        return "0"
    return (f"EXISTS (SELECT 1 FROM json_tree(json_extract(body, '$.from', '$.to')) "
            f"WHERE type = 'text' AND lower(atom) IN ({','.join('?' * count)}))")


def _body(row) -> dict:
    body = read_body(row[0])
    if row[1]:
        body["superseded_by"] = row[1]
    return body
