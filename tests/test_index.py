"""The SQLite index: WAL, a versioned schema moved forward one step at a time."""

import sqlite3

import pytest

import store.index as index_module
from store.index import SCHEMA_VERSION, Index


def test_new_index_is_wal_at_the_current_version(tmp_path):
    index = Index(tmp_path / "index.sqlite")
    assert index.version() == SCHEMA_VERSION == len(index_module.MIGRATIONS)
    assert index.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    index.close()


def test_an_older_index_is_migrated_forward_on_open(tmp_path, monkeypatch):
    Index(tmp_path / "index.sqlite").close()
    monkeypatch.setattr(index_module, "MIGRATIONS",
                        [*index_module.MIGRATIONS, "ALTER TABLE records ADD COLUMN reviewed INTEGER"])
    upgraded = Index(tmp_path / "index.sqlite")
    assert upgraded.version() == SCHEMA_VERSION + 1
    columns = [row[1] for row in upgraded.db.execute("PRAGMA table_info(records)")]
    assert columns[-1] == "reviewed"
    upgraded.close()


def test_a_failed_migration_changes_nothing(tmp_path, monkeypatch):
    Index(tmp_path / "index.sqlite").close()
    monkeypatch.setattr(index_module, "MIGRATIONS",
                        [*index_module.MIGRATIONS, "CREATE TABLE extra (x); THIS IS NOT SQL"])
    with pytest.raises(sqlite3.OperationalError, match="syntax error"):
        Index(tmp_path / "index.sqlite")
    monkeypatch.undo()
    again = Index(tmp_path / "index.sqlite")
    assert again.version() == SCHEMA_VERSION
    assert again.db.execute("SELECT name FROM sqlite_master WHERE name='extra'").fetchone() is None
    again.close()
