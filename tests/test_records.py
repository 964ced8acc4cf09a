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
    from ingest.model.records import body_json, read_body

    assert body_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'                # sorted, compact, UTF-8
    name = b"photo-\xff.jpg".decode("utf-8", "surrogateescape")             # a name that is not UTF-8
    assert body_json({"filename": name}) == '{"filename":"photo-\udcff.jpg"}'
    assert read_body('{"gps":NaN,"a":1}')["a"] == 1                          # json wrote NaN before
    assert read_body(body_json({"x": [1, None, "z"]})) == {"x": [1, None, "z"]}
