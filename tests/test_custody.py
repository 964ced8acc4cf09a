"""The custody log: a hash chain that names every line that was edited, moved or removed."""

import json

from store.custody import GENESIS, CustodyLog, line_hash


def make_log(tmp_path, count=4):
    log = CustodyLog(tmp_path / "custody.jsonl")
    for number in range(count):
        log.append({"action": "acquire", "detail": {"n": number}})
    return log


def problems(log):
    return [(number, problem) for number, _entry, _hash, found in log.walk() for problem in found]


def test_chain_links_each_line_to_the_one_before(tmp_path):
    log = make_log(tmp_path)
    lines = log.path.read_bytes().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [entry["seq"] for entry in entries] == [1, 2, 3, 4]
    assert entries[0]["prev"] == GENESIS
    assert entries[2]["prev"] == line_hash(lines[1])
    assert log.tail() == (4, line_hash(lines[3]))
    assert problems(log) == []


def test_tail_is_read_again_from_disk(tmp_path):
    make_log(tmp_path)
    fresh = CustodyLog(tmp_path / "custody.jsonl")
    assert fresh.tail()[0] == 4
    fresh.append({"action": "verify"})
    assert problems(fresh) == []


def test_an_edited_line_breaks_the_chain_at_the_next_line(tmp_path):
    log = make_log(tmp_path)
    text = log.path.read_text().replace('"n":1', '"n":9')
    log.path.write_text(text)
    assert problems(log) == [(3, "does not follow from the line before it (hash chain broken: "
                                 "a line was edited, removed or moved)")]


def test_reordered_lines_are_named(tmp_path):
    log = make_log(tmp_path)
    lines = log.path.read_text().splitlines(keepends=True)
    lines[1], lines[2] = lines[2], lines[1]
    log.path.write_text("".join(lines))
    found = problems(log)
    assert (2, "has sequence number 3, expected 2") in found
    assert (3, "has sequence number 2, expected 3") in found
    assert {number for number, _ in found} == {2, 3, 4}


def test_partial_last_line_is_cut_and_returned(tmp_path):
    log = make_log(tmp_path, 2)
    with open(log.path, "ab") as handle:
        handle.write(b'{"action":"acq')
    assert log.drop_partial_tail() == b'{"action":"acq'
    assert log.tail()[0] == 2
    assert problems(log) == []
