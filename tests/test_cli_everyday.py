"""The everyday CLI (issue 17): what an advocate at a keyboard expects, each point with its exact text or code."""

from __future__ import annotations

import json
import os

import blake3
import click
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
        "    2    the command was given wrongly (an unknown option, kind, party or source), or the case cannot be used\n"
        "    3    a source could not be read (a missing file, an unreachable server, a refused password)\n"
        "    70   an internal error in ingest (please report it; what was kept is safe)\n"
        "    130  stopped with Ctrl-C (what was kept before the stop is safe)\n")


# --- dates as people type them ------------------------------------------------------------------
def us_case(tmp_path):
    root = tmp_path / "us-case"
    invoke("init", root, "--timezone", "America/New_York", "--region", "US")
    return root


def test_a_numeric_date_is_read_in_the_regions_order_and_says_so(ingest, tmp_path):
    result = ingest("note", "Flowers left on the car", "--at", "03/04/2024 10:00")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(" at 2024-04-03T10:00:00+01:00.\n"
                                  "03/04/2024 10:00 was read as 3 April 2024 (day/month, as dates are written in GB).\n")
    us = invoke("--case", us_case(tmp_path), "note", "Flowers left on the car", "--at", "03/04/2024 10:00")
    assert us.stdout.endswith(" at 2024-03-04T10:00:00-05:00.\n"
                              "03/04/2024 10:00 was read as 4 March 2024 (month/day, as dates are written in US).\n")
    unambiguous = ingest.json("note", "x", "--at", "13/04/2024 10:00", "--json")
    assert unambiguous["occurred_at"] == "2024-04-13T10:00:00+01:00" and "at_day_order" not in unambiguous["metadata"]


def test_a_time_written_as_people_do_is_read(ingest):
    result = ingest("note", "He rang the bell", "--at", "2024-10-02 5pm")
    assert result.exit_code == 0 and result.stdout.endswith(" at 2024-10-02T17:00:00+01:00.\n")
    assert ingest.json("note", "x", "--at", "2/10/24 5.30pm", "--json")["occurred_at"] == "2024-10-02T17:30:00+01:00"


def test_a_date_without_a_time_is_kept_as_a_day_with_its_time_unknown(ingest):
    result = ingest("note", "A letter with no stamp", "--at", "2024-10-02")
    assert result.exit_code == 0 and result.stdout.endswith(" on 2024-10-02 (time not known).\n")
    [record] = ingest.json("list", "--json")
    assert record["metadata"]["date_only"] is True and record["metadata"]["occurred_on"] == "2024-10-02"
    assert record["occurred_at_raw"] == "2024-10-02"


def test_about_is_kept_with_the_time(ingest):
    result = ingest("note", "Car outside again", "--at", "2024-10-02 about 9pm")
    assert result.exit_code == 0 and result.stdout.endswith(" at about 2024-10-02T21:00:00+01:00.\n")
    [record] = ingest.json("list", "--json")
    assert record["metadata"]["at_approximate"] == "about" and record["occurred_at_raw"] == "2024-10-02 about 9pm"


def test_since_reads_the_same_forms_and_its_help_says_which(ingest):
    ingest("note", "early", "--at", "2024-04-02 09:00")
    ingest("note", "late", "--at", "2024-04-03 09:00")
    assert [r["text"] for r in ingest.json("list", "--since", "03/04/2024", "--json")] == ["late"]
    for command in ("list", "timeline", "export"):
        text = " ".join(ingest(command, "--help").stdout.split())
        assert ("--since WHEN Only records from this time on. Write it as 2024-03-01, '2024-03-01 21:40', "
                "'2024-03-01 9pm', 01/03/2024 (in the case region's day/month order) or 2024-03-01T21:40+01:00; "
                "read in the case's time zone.") in text
        assert "--until WHEN Only records before this time (a date alone: its first moment). Write it as" in text


# --- one output convention ------------------------------------------------------------------------
def test_json_everywhere_and_csv_where_a_table_is_printed(ingest, case_dir, tmp_path):
    made = invoke("init", tmp_path / "second", "--json")
    assert json.loads(made.stdout) == {"case": str(tmp_path / "second"), "name": "second", "timezone": "Europe/London",
                                       "region": "GB", "operator": json.loads(made.stdout)["operator"],
                                       "initials": json.loads(made.stdout)["initials"]}
    ingest("note", "Car outside", "--at", "2024-03-01 21:40")
    as_json = ingest.json("timeline", "--json")
    assert ingest.json("timeline", "--format", "json") == as_json == ingest.json("list", "--json")
    csv_text = ingest("timeline", "--csv").stdout
    assert csv_text == ingest("timeline", "--format", "csv").stdout == ingest("list", "--csv").stdout
    assert csv_text.splitlines()[1].startswith(f"{as_json[0]['id']},2024-03-01T21:40:00+00:00,True,note,")
    assert ingest("search", "outside", "--csv").stdout == csv_text
    report = ingest.json("report", "--out", tmp_path / "r.html", "--json")
    assert report == {"out": str(tmp_path / "r.html"), "records": 1}
    bundle = ingest.json("export", "--out", tmp_path / "b", "--json")
    assert (bundle["records"], bundle["originals"], bundle["out"]) == (1, 1, str(tmp_path / "b"))
    both = ingest("timeline", "--json", "--csv")
    assert both.exit_code == 2 and both.stderr == "ingest: Choose one way to print: --csv or --json.\n"


def test_every_command_that_prints_takes_json():
    from ingest.cli import cli as group

    commands = [(name, command) for name, command in group.commands.items() if name != "app"]  # app serves a page
    while commands:
        name, command = commands.pop()
        if isinstance(command, click.Group):
            commands += [(f"{name} {sub}", subcommand) for sub, subcommand in command.commands.items()]
            continue
        flags = {flag for param in command.params for flag in getattr(param, "opts", ())}
        assert "--json" in flags, name


# --- unknown values are usage errors ------------------------------------------------------------------
def test_an_unknown_kind_party_or_source_is_a_usage_error_listing_the_valid_ones(ingest, tmp_path):
    ingest("note", "x", "--at", "2024-03-01 21:40")
    kind = ingest("list", "--kind", "corrupt")
    assert kind.exit_code == 2 and kind.stdout == ""
    assert kind.stderr == ("ingest: 'corrupt' is not a kind of record. Choose one of: email, attachment, sms, mms, "
                           "call, whatsapp, screenshot, image, note, file, unparsed.\n")
    assert ingest("timeline", "--kind", "emails").exit_code == 2
    ingest("party", "add", "Mark Ellis", "--phone", "07700900123")
    ingest("party", "add", "Sarah", "--me", "--phone", "07700900456")
    party = ingest("list", "--party", "dave")
    assert party.exit_code == 2 and party.stdout == ""
    assert party.stderr == "ingest: There is no party called 'dave'. Known parties: Sarah, Mark Ellis.\n"
    assert ingest("timeline", "--party", "dave").stderr == party.stderr
    source = ingest("run", "--source", "whatsap", tmp_path)
    assert source.exit_code == 2
    assert source.stderr == ("ingest: 'whatsap' is not a source ingest knows. Choose one of: calls, eml, files, imap, "
                             "maildir, mbox, screenshots, sms, whatsapp.\n")
    assert ingest("watch", tmp_path, "--source", "whatsap", "--once").stderr == source.stderr


# --- a timeline that reads at 80 columns --------------------------------------------------------------
def test_the_timeline_reads_at_80_columns_and_wide_shows_everything(ingest, tmp_path):
    from handoff_helpers import build_mixed

    build_mixed(ingest, tmp_path / "evidence")
    ingest("note", "A letter with no stamp", "--at", "2024-02-20")
    ingest("note", "Car outside again", "--at", "2024-02-21 about 9pm")
    output = ingest("timeline", env={"COLUMNS": "80"}).stdout.splitlines()
    assert max(map(len, output)) == 80
    lines = [line.rstrip() for line in output]
    assert lines[:4] == ["Timeline of Test case",
                         "when                 kind      who                  what",
                         "─" * 80,
                         "2024-02-05 09:00     file                           I saw you at the station on…"]
    assert "2024-02-10 21:40*    note                           Grey Ford Focus AB12 CDE pa…" in lines
    assert "2024-02-11 09:00     sms in    +447700900123        I know where you live now" in lines
    assert "2024-02-14 20:15     email     j.smith@example.c…   Saw you today" in lines
    assert "2024-02-20 ?         note                           A letter with no stamp" in lines
    assert "2024-02-21 ~21:00*   note                           Car outside again" in lines
    assert lines[-4:] == ["Times are local to Europe/London.",
                          "* zone assumed: no zone was given, so the time was read as Europe/London.",
                          "? the time of day is not known.",
                          "~ about: the time as it was given, not exact."]
    assert "".join(lines).count("zone assumed") == 1
    wide = ingest("timeline", "--wide").stdout
    assert "I saw you at the station on Tuesday. I will be waiting." in wide
    assert "2024-02-10T21:40:00+00:00 (zone assumed)" in wide and "2024-02-20 (time not known)" in wide
    listed = ingest("list", env={"COLUMNS": "80"}).stdout.splitlines()
    assert max(map(len, listed)) == 80 and listed[0].startswith("id         when ")


# --- name the evidence, not only the hash ---------------------------------------------------------------
def test_verify_names_the_file_its_kind_and_time_beside_the_hash(ingest, tmp_path):
    folder = tmp_path / "letters"
    folder.mkdir()
    letter = folder / "letter left at the door.txt"
    letter.write_text("I know where you live.\n")
    os.utime(letter, (1709283600, 1709283600))                 # 2024-03-01 09:00 UTC
    ingest("run", "--source", "files", folder)
    [record] = ingest.json("list", "--json")
    name = record["original"]["blake3"]
    stored = ingest.case_dir / "objects" / name[:2] / name
    os.chmod(stored, 0o644)
    stored.write_bytes(b"I know where you live!\n")
    os.chmod(stored, 0o444)
    result = ingest("verify")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == (
        f"PROBLEM object {name} (letter left at the door.txt, file, 2024-03-01 09:00): content changed: its BLAKE3 "
        f"is now {blake3.blake3(b'I know where you live!' + bytes([10])).hexdigest()}")
    problems = json.loads(ingest("verify", "--json").stdout)["problems"]
    assert problems[0].startswith(f"object {name} (letter left at the door.txt, file, 2024-03-01 09:00): ")


# --- counts that add up, in plain words ---------------------------------------------------------------------
def test_originals_an_interrupted_run_stored_are_counted_and_everything_adds_up(ingest, tmp_path):
    from ingest.case import Case

    folder = tmp_path / "letters"
    folder.mkdir()
    for number in range(5):
        (folder / f"letter{number}.txt").write_text(f"letter {number}\n")
    ingest("run", "--source", "files", folder / "letter0.txt")
    with Case.open(ingest.case_dir, writable=True) as case:     # as a run killed after storing two files' bytes
        for number in (1, 2):
            with open(folder / f"letter{number}.txt", "rb") as handle:
                case.objects.put(handle, durable=True)
    result = ingest("run", "--source", "files", folder)
    assert result.exit_code == 0, result.output
    assert result.stdout == ("Kept 4 new files (2 of them stored by an interrupted run and finished now).\n"
                             "Already in the case: 1 (nothing was added twice).\n"
                             "In all: 5 given = 4 new + 1 already in the case + 0 not kept.\n"
                             "Records written: 4.\n")
    assert ingest("verify").exit_code == 0


def test_the_run_summary_says_what_was_kept_in_plain_words(ingest):
    from conftest import REPO

    emails = ingest("run", "--source", "eml", REPO / "examples" / "eml")
    assert emails.stdout == ("Kept 3 new emails.\n"
                             "Kept 1 attachment found inside them.\n"
                             "In all: 3 given = 3 new + 0 already in the case + 0 not kept.\n"
                             "Records written: 4.\n")
    as_json = ingest.json("run", "--source", "eml", REPO / "examples" / "eml", "--json")
    assert {key: as_json[key] for key in ("new", "already_held", "unparsed", "failed", "records")} == \
        {"new": 0, "already_held": 3, "unparsed": 0, "failed": 0, "records": 0}
    calls = ingest("run", "--source", "calls", REPO / "examples" / "calls" / "calls-20240304083000.xml")
    assert calls.stdout.splitlines()[-1] == "calls-20240304083000.xml: all 6 calls in the backup were kept."


def test_the_reparse_summary_adds_up_in_its_own_words(ingest, tmp_path, monkeypatch):
    from adapters.file import FileParser

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.txt", "b.txt"):
        (folder / name).write_text(name)
    ingest("run", "--source", "files", folder)
    assert ingest("reparse").stdout == ("Already read by today's parsers: 2.\n"
                                        "In all: 2 = 0 read again + 2 already up to date.\n"
                                        "Records written: 0.\n")
    monkeypatch.setattr(FileParser, "version", "2")
    assert ingest("reparse").stdout == ("Read again with today's parsers: 2 originals.\n"
                                        "In all: 2 = 2 read again + 0 already up to date.\n"
                                        "Records written: 2 (the records they replace are kept, marked superseded).\n")


# --- IMAP manners ---------------------------------------------------------------------------------------
def test_the_password_prompt_suggests_the_variable_first():
    from ingest.cli import ask_secret

    runner = CliRunner()
    with runner.isolation(input="s3cret\n") as (stdout, stderr, _output):
        assert ask_secret("Password for me@example.com at imap.example.com") == "s3cret"
    assert stdout.getvalue() == b""                     # stdout stays clean for --json
    assert stderr.getvalue() == (b"On a shared computer, prefer --password-env VAR to typing the password here.\n"
                                 b"Password for me@example.com at imap.example.com: \n")
