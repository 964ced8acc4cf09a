"""`ingest seal` and `ingest verify --seal`: an anchor outside the case; and the case's verify
treating a missing or replaced index as a problem."""

from __future__ import annotations

import json
import re
import sqlite3


from store.custody import line_hash
from ingest.case import Case
from ingest.model.records import canonical_json
from ingest.features.seal import seal_code


def log_lines(ingest) -> list[bytes]:
    return (ingest.case_dir / "custody.jsonl").read_bytes().splitlines()


def rewrite_whole_chain(ingest, edit) -> None:
    """A consistent rewrite: every line re-chained, and the index's head and count updated to match."""
    prev, lines = "0" * 64, []
    for raw in log_lines(ingest):
        entry = edit(json.loads(raw))
        entry["prev"] = prev
        line = canonical_json(entry).encode()
        prev = line_hash(line)
        lines.append(line)
    (ingest.case_dir / "custody.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    index_to_match(ingest, lines)


def index_to_match(ingest, lines: list[bytes]) -> None:
    """Set the index's custody checkpoint (count, head, bytes and their BLAKE3) to these lines."""
    import blake3

    data = b"".join(line + b"\n" for line in lines)
    with sqlite3.connect(ingest.case_dir / "index.sqlite") as db:
        for key, value in (("custody_head", line_hash(lines[-1])), ("custody_lines", str(len(lines))),
                           ("custody_bytes", str(len(data))), ("custody_prefix", blake3.blake3(data).hexdigest())):
            db.execute("UPDATE meta SET value=? WHERE key=?", (value, key))


def test_seal_prints_a_code_for_the_log_and_logs_itself(filled):
    before = log_lines(filled)
    made = filled.json("seal", "--json")
    assert set(made) == {"seal", "line", "time"}
    assert re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}", made["seal"])
    assert made["line"] == len(before) == 7
    assert made["seal"] == seal_code(7, line_hash(before[-1]))
    after = log_lines(filled)
    assert after[:7] == before and len(after) == 8
    entry = json.loads(after[7])
    assert (entry["action"], entry["time"]) == ("seal", made["time"])
    assert entry["detail"] == {"seal": made["seal"], "line": 7, "head": line_hash(before[-1])}

    text = filled("seal")
    assert text.exit_code == 0
    assert text.stdout.splitlines()[0] == f"Seal: {seal_code(8, line_hash(after[-1]))}"


def test_a_consistent_rewrite_of_the_whole_chain_is_caught_only_by_the_seal(filled):
    code = filled.json("seal", "--json")["seal"]
    ok = filled("verify", "--seal", code)
    assert ok.exit_code == 0, ok.output
    assert f"note: The seal {code} matches custody line 7: the log up to it is unchanged." in ok.stdout
    # typed by hand: lower case, no dashes, 0 for O and 1 for I
    typed = code.replace("-", " ").lower().replace("o", "0").replace("i", "1")
    assert filled("verify", "--seal", typed).exit_code == 0

    rewrite_whole_chain(filled, lambda e: dict(e, operator="Someone else") if e["seq"] == 2 else e)
    plain = filled("verify")
    assert plain.exit_code == 0, plain.output            # the case alone cannot tell
    caught = filled("verify", "--seal", code)
    assert caught.exit_code == 1
    assert [line for line in caught.stdout.splitlines() if line.startswith("PROBLEM")] == [
        f"PROBLEM seal {code}: no line of the custody log matches it: the log up to the moment the seal was given "
        "has been changed"]


def test_a_seal_is_checked_against_a_bundle_log(filled, tmp_path):
    code = filled.json("seal", "--json")["seal"]
    later = tmp_path / "later.txt"
    later.write_text("another message\n")
    filled.json("run", "--source", "files", later, "--json")
    assert filled("export", "--out", tmp_path / "bundle").exit_code == 0
    assert filled("verify", tmp_path / "bundle", "--seal", code).exit_code == 0
    other = seal_code(3, "0" * 64)
    result = filled("verify", tmp_path / "bundle", "--seal", other)
    assert result.exit_code == 1 and f"PROBLEM seal {other}: no line of the custody log matches it" in result.stdout


def test_a_mistyped_seal_is_one_line(filled):
    result = filled("verify", "--seal", "ABCD-EFGH")
    assert result.exit_code == 2
    assert result.stderr == ("ingest: 'ABCD-EFGH' is not a seal code. A seal is 16 letters and digits in groups of "
                             "four, e.g. ABCD-EFGH-2345-WXYZ.\n")


def test_a_deleted_index_is_a_problem_and_nothing_is_written(filled):
    lines = log_lines(filled)
    for path in filled.case_dir.glob("index.sqlite*"):
        path.unlink()
    result = filled("verify")
    assert result.exit_code == 1
    assert ("PROBLEM index: index.sqlite is missing or was replaced: it holds nothing, but the custody log has lines; "
            "restore it from a backup of the case") in result.stdout.splitlines()
    assert "uncommitted" not in result.stdout and "not committed" not in result.stdout
    assert log_lines(filled) == lines                     # no "recover" line claiming the log's lines
    run = filled("run", "--source", "files", filled.case_dir.parent / "in")
    assert run.exit_code == 2 and run.stderr.startswith("ingest: This case cannot be changed: index.sqlite is missing")
    assert log_lines(filled) == lines


def test_another_cases_index_is_a_problem(filled, tmp_path):
    Case.init(tmp_path / "other", name="Other").close()
    for path in filled.case_dir.glob("index.sqlite*"):
        path.unlink()
    (filled.case_dir / "index.sqlite").write_bytes((tmp_path / "other" / "index.sqlite").read_bytes())
    result = filled("verify")
    assert result.exit_code == 1
    assert ("PROBLEM index: index.sqlite belongs to another case (it names another init line); restore this case's "
            "own") in result.stdout.splitlines()


def test_the_readme_computes_the_seal_with_standard_tools(filled, tmp_path):
    """An officer without ingest checks a seal with the README's command (b3sum, base32)."""
    import subprocess

    code = filled.json("seal", "--json")
    out = tmp_path / "bundle"
    result = filled("export", "--out", out)
    assert result.exit_code == 0
    lines = len((out / "data" / "custody.jsonl").read_text().splitlines())
    (command,) = [line.strip() for line in (out / "README.txt").read_text().splitlines() if "b3sum --raw" in line]
    for number, wanted in ((code["line"], code["seal"]), (lines, result.stdout.split()[-1])):
        filled_in = command.replace("'Np'", f"'{number}p'").replace("ingest-seal/1 N", f"ingest-seal/1 {number}")
        printed = subprocess.run(["bash", "-c", filled_in], cwd=out, capture_output=True, text=True, check=True).stdout
        assert printed.strip() == wanted.replace("-", "")


def test_lines_dropped_from_the_end_with_the_index_to_match_are_caught_by_the_seal(filled):
    assert filled("verify").exit_code == 0                 # line 8: a check, naming no records
    code = filled.json("seal", "--json")["seal"]          # seals lines 1-8; the seal's own line is 9
    kept = log_lines(filled)[:7]
    (filled.case_dir / "custody.jsonl").write_bytes(b"\n".join(kept) + b"\n")
    index_to_match(filled, kept)
    assert filled("verify").exit_code == 0                 # the log alone looks whole
    caught = filled("verify", "--seal", code)
    assert caught.exit_code == 1 and f"PROBLEM seal {code}: no line of the custody log matches it" in caught.stdout
