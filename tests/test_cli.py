"""The CLI contract: help everywhere, one clear line for every expected failure."""

import json
import os
import stat
import subprocess
import sys

import pytest
from click.testing import CliRunner

from ingest.cli import cli

COMMANDS = sorted(cli.commands)


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def test_the_contract_commands_all_exist():
    assert set(COMMANDS) >= {"init", "run", "watch", "note", "list", "show", "search", "timeline", "report",
                             "export", "verify", "log", "reparse"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: cli {command}") or result.stdout.startswith(f"Usage: ingest {command}")
    assert len(cli.commands[command].help or "") > 30


def test_init_makes_a_private_case(tmp_path):
    result = invoke("init", tmp_path / "c", "--name", "Harassment by D", "--timezone", "Europe/Dublin",
                    "--region", "ie", "--operator", "A. Advocate")
    assert result.exit_code == 0, result.output
    root = tmp_path / "c"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "signing_key.pem").stat().st_mode) == 0o600
    config = (root / "case.toml").read_text()
    assert 'name = "Harassment by D"' in config and 'timezone = "Europe/Dublin"' in config
    assert 'region = "IE"' in config and 'operator = "A. Advocate"' in config
    first = json.loads((root / "custody.jsonl").read_text().splitlines()[0])
    assert (first["seq"], first["action"], first["operator"], first["prev"]) == (1, "init", "A. Advocate", "0" * 64)


def test_init_refuses_an_existing_case(tmp_path):
    invoke("init", tmp_path / "c")
    result = invoke("init", tmp_path / "c")
    assert result.exit_code == 2
    assert result.stderr == f"ingest: {tmp_path / 'c'} is already a case. Use it as it is, or choose another folder.\n"


def test_init_refuses_an_unknown_timezone(tmp_path):
    result = invoke("init", tmp_path / "c", "--timezone", "Mars/Olympus")
    assert result.exit_code == 2
    assert result.stderr == ("ingest: 'Mars/Olympus' is not a known time zone. "
                             "Use a name like Europe/London or America/New_York.\n")
    assert not (tmp_path / "c").exists()


def test_a_folder_that_is_not_a_case(tmp_path):
    result = invoke("--case", tmp_path, "list")
    assert result.exit_code == 2
    assert result.stderr == (f"ingest: {tmp_path} is not an ingest case (it has no case.toml). Create one with "
                             "`ingest init DIR`, or point --case at an existing case.\n")


def test_a_case_that_does_not_exist(tmp_path):
    result = invoke("--case", tmp_path / "gone", "verify")
    assert result.exit_code == 2
    assert result.stderr == f"ingest: There is no case at {tmp_path / 'gone'}. Create one with `ingest init {tmp_path / 'gone'}`.\n"


def test_case_from_environment_and_current_folder(tmp_path, monkeypatch):
    invoke("init", tmp_path / "c")
    result = invoke("log", env={"INGEST_CASE": str(tmp_path / "c")})
    assert result.exit_code == 0 and " init " in result.stdout
    monkeypatch.chdir(tmp_path / "c")
    monkeypatch.delenv("INGEST_CASE", raising=False)
    result = invoke("log")
    assert result.exit_code == 0 and " init " in result.stdout


def test_unknown_source_is_one_line(ingest, tmp_path):
    result = ingest("run", "--source", "fax", tmp_path)
    assert result.exit_code == 2
    assert result.stderr.startswith("ingest: 'fax' is not a source ingest knows. Choose one of: ")
    assert result.stderr.count("\n") == 1


def test_show_unknown_id(ingest):
    result = ingest("show", "ffffffff")
    assert result.exit_code == 2
    assert result.stderr == "ingest: No single record has an id starting 'ffffffff'. See `ingest list` for ids.\n"


def test_search_finds_text_and_survives_bad_syntax(ingest, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "threat.txt").write_text("I will be waiting outside your work tomorrow\n")
    (tmp_path / "in" / "other.txt").write_text("Dentist on Tuesday\n")
    ingest.json("run", "--source", "files", tmp_path / "in", "--json")
    found = json.loads(ingest("search", "waiting", "--json").stdout)
    assert [r["original"]["filename"] for r in found] == ["threat.txt"]
    plain = ingest("search", '"outside your work"')
    assert plain.exit_code == 0 and "I will be waiting [outside your work] tomorrow" in plain.stdout
    bad = ingest("search", 'AND OR "')
    assert bad.exit_code == 2 and bad.stderr.startswith("ingest: Cannot search for ")


def test_list_filters_and_show_by_prefix(ingest, tmp_path):
    (tmp_path / "in").mkdir()
    for name, when in (("early.txt", 1704067200), ("late.txt", 1717200000)):   # 2024-01-01, 2024-06-01 UTC
        (tmp_path / "in" / name).write_text(name)
        os.utime(tmp_path / "in" / name, (when, when))
    ingest.json("run", "--source", "files", tmp_path / "in", "--json")
    late = ingest.json("list", "--since", "2024-03-01", "--json")
    assert [r["original"]["filename"] for r in late] == ["late.txt"]
    early = ingest.json("list", "--until", "2024-03-01T00:00:00+00:00", "--kind", "file", "--json")
    assert [r["original"]["filename"] for r in early] == ["early.txt"]
    shown = ingest.json("show", late[0]["id"][:8], "--json")
    assert shown == late[0]
    text = ingest("show", late[0]["id"])
    assert "occurred_at_source: file:mtime" in text.stdout


def test_a_bad_time_filter_is_one_line(ingest):
    result = ingest("list", "--since", "last tuesday")
    assert result.exit_code == 2
    assert result.stderr == ("ingest: Could not read the time 'last tuesday'. "
                             "Write it like 2024-03-01 21:40, 2024-03-01 9pm or 01/03/2024.\n")


def test_log_json_is_the_file_exactly(ingest, case_dir):
    result = ingest("log", "--json")
    assert result.stdout == (case_dir / "custody.jsonl").read_text()


def test_only_run_loads_the_adapters():
    """Every command but `run` starts without importing every adapter; `run --help` still lists theirs."""
    import subprocess
    import sys

    script = ("import sys\nfrom click.testing import CliRunner\nfrom ingest.cli import cli\n"
              "loaded = lambda: sorted(m for m in sys.modules if m.startswith('adapters'))\n"
              "assert loaded() == [], loaded()\n"
              "assert CliRunner().invoke(cli, ['--help']).exit_code == 0 and loaded() == [], loaded()\n"
              "help = CliRunner().invoke(cli, ['run', '--help']).output\n"
              "assert '--host' in help and '--map' in help and 'adapters.imap' in loaded()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_command_starts_without_what_only_some_runs_need():
    """Every command imports the CLI and every adapter (to sniff). What only some runs use is loaded
    when first used: phone numbers, the IMAP client, WhatsApp's full header patterns (together they were
    ~a fifth of each command's start)."""
    code = ("import sys\nimport ingest.cli\nfrom ingest.kit import registry\nregistry.load()\n"
            "from adapters.whatsapp import _grammar\n"
            "print(sorted(name for name in ('phonenumbers', 'imapclient') if name in sys.modules),"
            " _grammar._headers.cache_info().currsize)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert shown == "[] 0\n"
