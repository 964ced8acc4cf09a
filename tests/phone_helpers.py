"""Small phone-backup fixtures written by the tests themselves (fictional people, Ofcom drama numbers)."""

from __future__ import annotations

import json
from pathlib import Path

# A 1x1 PNG: the photo in an MMS.
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
HEADER = "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"


def sms(date: int, address: str = "+447700900123", type_: int = 1, body: str = "Hello", **extra) -> str:
    attrs = {"protocol": "0", "address": address, "date": str(date), "type": str(type_), "subject": "null",
             "body": body, "toa": "null", "sc_toa": "null", "service_center": "null", "read": "1",
             "status": "-1", "locked": "0", "date_sent": "0", "readable_date": "1 mars 2024 21:41:05",
             "contact_name": "Jamie Doe", **extra}
    return "  <sms " + " ".join(f'{key}="{value}"' for key, value in attrs.items()) + " />\n"


def write_backup(path: Path, elements: list[str], count: int | None = None, tail: str = "</smses>\n",
                 root: str = "smses") -> Path:
    count = len(elements) if count is None else count
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f'<{root} count="{count}" backup_set="0b1e" backup_date="1709400000000" type="full">\n'
                    + "".join(elements) + tail, encoding="utf-8")
    return path


def run(ingest, source: str, *paths, expect_exit: int = 0) -> dict:
    result = ingest("run", "--source", source, *paths, "--json")
    assert result.exit_code == expect_exit, result.output
    return json.loads(result.stdout)


def records(ingest, kind: str | None = None) -> list[dict]:
    found = ingest.json("list", "--json")
    return [record for record in found if kind is None or record["kind"] == kind]


def by_locator(ingest) -> dict:
    """Records by locator; a child original's own record (an MMS photo) by "!" + its locator in the parent."""
    found = {}
    for record in records(ingest):
        key = record["source"]["key"]
        found["!" + key.rsplit("!", 1)[1] if "!" in key else record["source"]["locator"]] = record
    return found
