"""`ingest reparse`: a newer parser re-derives records from the stored originals; old ones stay, superseded."""

import json

from adapters.file import FileParser
from adapters.files import FilesSource
from ingest import pipeline


def test_reparse_with_a_new_parser_version_supersedes_and_keeps(tmp_path, case, monkeypatch):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("first\n")
    (tmp_path / "in" / "b.txt").write_text("second\n")
    pipeline.run(case, FilesSource([tmp_path / "in"]))
    old_ids = sorted(r["id"] for r in case.index.records())

    unchanged = pipeline.reparse(case)
    assert (unchanged.records, unchanged.already_held) == (0, 2)

    monkeypatch.setattr(FileParser, "version", "2")
    summary = pipeline.reparse(case)
    assert summary.records == 2
    current = list(case.index.records())
    assert sorted(r["source"]["parser"] for r in current) == ["file 2", "file 2"]
    assert not set(r["id"] for r in current) & set(old_ids)
    everything = list(case.index.records(include_superseded=True))
    assert len(everything) == 4
    superseded = [r for r in everything if r.get("superseded_by")]
    assert sorted(r["id"] for r in superseded) == old_ids
    assert case.index.record(old_ids[0])["superseded_by"] == "file 2"
    last = json.loads(case.custody.path.read_text().splitlines()[-1])
    assert last["action"] == "reparse" and last["detail"]["records"] == 2


def test_reparse_cli_reports_counts(tmp_path, ingest):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("x")
    ingest.json("run", "--source", "files", tmp_path / "in", "--json")
    result = ingest.json("reparse", "--parser", "file", "--json")
    assert (result["records"], result["already_held"], result["new"]) == (0, 1, 0)
    unknown = ingest("reparse", "--parser", "nosuch")
    assert unknown.exit_code == 2 and unknown.stderr.startswith("ingest: There is no parser called 'nosuch'.")
