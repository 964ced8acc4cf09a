"""The record schema: a Record's kind and direction are those DESIGN.md names, or it is not made."""

import pytest

from ingest.model.records import DIRECTIONS, KINDS, Record


def test_every_schema_kind_and_direction_makes_a_record():
    for kind in KINDS:
        assert Record(kind=kind).kind == kind
    for direction in DIRECTIONS:
        assert Record(kind="call", direction=direction).direction == direction
    assert Record(kind="note").direction is None


@pytest.mark.parametrize("kind", ["telegram", "SMS", "", None])
def test_a_kind_outside_the_schema_is_refused(kind):
    with pytest.raises(ValueError, match=f"a record's kind must be one of email, .*, unparsed, not {kind!r}"):
        Record(kind=kind)


@pytest.mark.parametrize("direction", ["inbound", "Incoming", ""])
def test_a_direction_outside_the_schema_is_refused(direction):
    with pytest.raises(ValueError, match=f"direction must be one of incoming, .* or None, not {direction!r}"):
        Record(kind="call", direction=direction)


def test_a_body_orjson_refuses_is_written_by_json_and_old_nan_bodies_still_read():
    from ingest.model.records import canonical_json, read_body

    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'           # sorted, compact, UTF-8
    name = b"photo-\xff.jpg".decode("utf-8", "surrogateescape")             # a name that is not UTF-8
    assert canonical_json({"filename": name}) == '{"filename":"photo-\udcff.jpg"}'
    assert read_body('{"gps":NaN,"a":1}')["a"] == 1                          # json wrote NaN before
    assert read_body(canonical_json({"x": [1, None, "z"]})) == {"x": [1, None, "z"]}


def test_canonical_json_spells_everything_as_json_does():
    """Custody lines written before orjson must still check: every code point, key order and
    integer is spelt as json spells it."""
    import json
    import random

    from ingest.model.records import canonical_json

    def spelt_by_json(value):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    text = "".join(chr(point) for point in range(0x110000) if not 0xD800 <= point < 0xE000)
    assert canonical_json({"text": text}) == spelt_by_json({"text": text})
    pick = random.Random(3)
    for _ in range(500):
        keys = ["".join(chr(pick.choice([pick.randint(0x20, 0xD7FF), pick.randint(0xE000, 0x10FFFF)]))
                        for _ in range(pick.randint(0, 3))) for _ in range(5)]
        value = {key: [number, None, True, -number, 2 ** 62] for number, key in enumerate(keys)}
        assert canonical_json(value) == spelt_by_json(value)
    for value in ({"bad": "\udcff"}, {3: "a", 10: "b"}):         # refused by orjson: json's, as before
        assert canonical_json(value) == spelt_by_json(value)


def test_a_custody_line_holding_a_float_checks_as_written(tmp_path):
    from store.custody import CustodyLog, line_hash

    log = CustodyLog(tmp_path / "custody.jsonl")
    written = log.append({"action": "test", "detail": {"ratio": 1e-05, "big": 1e16}, "private": {"nonce": "n"}})
    raw = (tmp_path / "custody.jsonl").read_bytes()
    assert b'"ratio":0.00001' in raw
    assert line_hash(raw) == written["hash"]
