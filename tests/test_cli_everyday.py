"""The everyday CLI (issue 17): what an advocate at a keyboard expects, each point with its exact text or code."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ingest.cli import cli


def invoke(*args, env=None, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, input=input, catch_exceptions=False)


def test_case_is_accepted_after_the_command_with_the_same_meaning(case_dir, tmp_path):
    folder = tmp_path / "letters"
    folder.mkdir()
    (folder / "letter.txt").write_text("I know where you live.\n")
    result = invoke("run", "--case", case_dir, "--source", "files", folder, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["new"] == 1
    listed = invoke("list", "--json", "--case", case_dir)
    assert [record["original"]["filename"] for record in json.loads(listed.stdout)] == ["letter.txt"]
    before = invoke("--case", case_dir, "list", "--json")
    assert before.stdout == listed.stdout


def test_case_after_the_command_wins_over_the_environment(case_dir, tmp_path):
    result = invoke("list", "--json", "--case", case_dir, env={"INGEST_CASE": str(tmp_path / "elsewhere")})
    assert result.exit_code == 0 and result.stdout == "[]\n"


def test_the_exit_codes_are_in_the_help_epilogue():
    text = invoke("--help").stdout
    assert text.endswith(
        "  Exit codes:\n"
        "    0    done: everything asked for was kept or holds\n"
        "    1    something could not be kept, or verify found a problem (each is named)\n"
        "    2    the command was given wrongly (an unknown option, kind or source), or the case cannot be used\n"
        "    3    a source could not be read (a missing file, an unreachable server, a refused password)\n"
        "    70   an internal error in ingest (please report it; what was kept is safe)\n"
        "    130  stopped with Ctrl-C (what was kept before the stop is safe)\n")
