"""The `ingest` command: a thin layer over the library. Each command parses its options,
calls one library function and prints the result. Progress and warnings go to stderr.

Longer than 600 lines because it holds some twenty commands, each a short function; none
holds logic the library lacks. Output wording shared by several commands is in
ingest/features/summary.py and rows.py."""

from __future__ import annotations

import errno
import json
import os
import re
import sys
import traceback
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ingest import __version__
from ingest.case import Case, resolve_case_dir
from ingest.model.errors import IngestError, UsageError
from ingest.model.times import USER_TIME_FORMS, iso_utc

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


class RichProgress:
    """The pipeline's progress drawn as a bar on stderr, only when a person is watching."""

    def __init__(self, description: str):
        self.description = description
        self.bar = None
        self.task = None
        if err.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), TextColumn("{task.fields[item]}"), console=err,
                                transient=True)

    def __enter__(self):
        if self.bar:
            self.bar.start()
            self.task = self.bar.add_task(self.description, total=None, item="")
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.stop()

    def total(self, count):
        if self.bar:
            self.bar.update(self.task, total=count)

    def advance(self, label):
        if self.bar:
            self.bar.update(self.task, advance=1, item=str(label)[-40:])

    def warn(self, message):
        err.print(f"[yellow]warning:[/yellow] {message}", markup=True, highlight=False)


def remember_case(ctx, _param, value):
    """`--case DIR` given after a command means what it means before it."""
    if value is not None:
        ctx.find_root().obj["case_dir"] = value


CASE_HELP = ("The case folder. Default: $INGEST_CASE, else the current folder if it is a case, "
             "else your user data folder.")


def accept_case_option(command: click.Command) -> None:
    """Let `--case` follow any command (and, in a command group, any of its commands)."""
    if not any("--case" in getattr(param, "opts", ()) for param in command.params):
        command.params.append(click.Option(["--case"], type=click.Path(path_type=Path), metavar="DIR",
                                           expose_value=False, callback=remember_case, help=CASE_HELP))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_case_option(sub)


EXIT_CODES = """\b
Exit codes:
  0    done: everything asked for was kept or holds
  1    something could not be kept, or verify found a problem (each is named)
  2    the command was given wrongly (an unknown option, kind, party or source), or the case cannot be used
  3    a source could not be read (a missing file, an unreachable server, a refused password)
  70   an internal error in ingest (please report it; what was kept is safe)
  130  stopped with Ctrl-C (what was kept before the stop is safe)
"""


class Group(click.Group):
    """Turns expected failures into one calm line and an exit code; never a traceback."""

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            accept_case_option(command)
        return name, command, rest

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except IngestError as error:
            click.echo(f"ingest: {error}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("ingest: stopped. Everything kept before the stop is safe in the case.", err=True)
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit, BrokenPipeError):
            raise       # click ends a broken pipe (`ingest verify | head`) quietly
        except OSError as error:   # the system refused: say what and where, plainly
            click.echo(f"ingest: {os_failure(error, resolve_case_dir(ctx.obj and ctx.obj.get('case_dir')))}",
                       err=True)
            sys.exit(4)
        except Exception as error:  # a bug: say so plainly, keep the detail for whoever fixes it
            if os.environ.get("INGEST_DEBUG"):
                traceback.print_exc()
            click.echo(f"ingest: internal error ({type(error).__name__}: {error}). Everything already kept is "
                       "safe; please report this (set INGEST_DEBUG=1 to see the details).", err=True)
            sys.exit(70)


def os_failure(error: OSError, case_dir: Path) -> str:
    """One line for a failure the system reported, naming the place and what to do."""
    where = f" ({printable(os.fsdecode(error.filename))})" if error.filename else ""
    inside_case = bool(error.filename) and os.path.abspath(os.fsdecode(error.filename)).startswith(
        os.path.abspath(case_dir) + os.sep)
    if inside_case and not case_dir.exists():
        return (f"The case folder {case_dir} disappeared while ingest was working, so nothing more could be "
                "kept. Put the folder back (or choose another with --case) and run again.")
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"The disk is full{where}. Free some space and run again."
    if error.errno == errno.EROFS:
        return f"The disk is read-only{where}. Choose a place you can write to."
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"No permission to write there{where}. Choose a folder you can write to."
    if error.errno == errno.EIO:
        return f"The disk reported an error{where}; it may be failing. Copy the case elsewhere and run again."
    return f"The system refused: {error.strerror or error}{where}."


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=EXIT_CODES)
@click.option("--case", "case_dir", type=click.Path(path_type=Path), metavar="DIR",
              help=CASE_HELP + " Also accepted after the command.")
@click.version_option(__version__, prog_name="ingest")
@click.pass_context
def cli(ctx, case_dir):
    """Keep evidence of stalking and harassment so that it stands up.

    ingest copies every message, call, screenshot and file you give it into a
    case folder exactly as it is, records two hashes and two times for each,
    and logs every step, so an investigator can check that nothing was changed.

    \b
    Start:      ingest init ~/Evidence --timezone Europe/London --region GB
    Add files:  ingest run --case ~/Evidence ~/Downloads/screenshots
    Look:       ingest timeline --case ~/Evidence
    Hand over:  ingest export --case ~/Evidence --out bundle.zip
    """
    ctx.obj = {"case_dir": case_dir}


def open_case(ctx, *, writable: bool = False, read_only_ok: bool = False) -> Case:
    return Case.open(resolve_case_dir(ctx.obj["case_dir"]), writable=writable, read_only_ok=read_only_ok)


def say_unlogged(case: Case) -> None:
    if case.unlogged:
        click.echo(f"note: the case is read-only, so this {case.unlogged[0]} was not written to its custody log.",
                   err=True)


def print_json(value) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True))


WIDE = 400      # --wide: columns no terminal would hold, for a file or a very wide window
MIN_TEXT = 16   # never less of the text than this, however narrow the terminal


def output_options(*, table: bool):
    """--json everywhere, and --csv where a table is printed: one convention for every command."""
    def add(command):
        if table:
            command = click.option("--csv", "as_csv", is_flag=True, help="Print the records as CSV.")(command)
        return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text, for scripts.")(command)
    return add


def chosen_format(as_json: bool, as_csv: bool = False, fmt: str | None = None) -> str:
    picked = {name for name, flag in (("json", as_json), ("csv", as_csv)) if flag} | ({fmt} if fmt else set())
    if len(picked) > 1:
        raise UsageError(f"Choose one way to print: {' or '.join('--' + name for name in sorted(picked))}.")
    return picked.pop() if picked else "table"


def time_bound(case: Case, text: str | None) -> str | None:
    from ingest.features.typed_times import typed_time

    return iso_utc(typed_time(case, text).moment) if text else None


# --- init ----------------------------------------------------------------------
@cli.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--name", help="A name for the case (default: the folder's name).")
@click.option("--timezone", default="Europe/London", show_default=True,
              help="Where you live (IANA name): times written without a zone are read in it.")
@click.option("--region", default="GB", show_default=True,
              help="Your country's two-letter code: phone numbers without +country are read for it.")
@click.option("--operator", help="Who is keeping this evidence (default: your user name). Written in the custody log.")
@click.option("--initials", help="Your initials for exhibit marks, e.g. SP gives SP/1, SP/2... "
                                 "(default: from the operator's name).")
@output_options(table=False)
@click.pass_context
def init(ctx, directory, name, timezone, region, operator, initials, as_json):
    """Create a new case folder (private to you: mode 0700).

    Keep it somewhere only you control. It also makes the key that signs
    exports, so an officer can check a bundle came from this case.
    """
    root = directory or resolve_case_dir(ctx.obj["case_dir"])
    case = Case.init(root, name=name, timezone=timezone, region=region, operator=operator, initials=initials)
    case.close()
    if as_json:
        print_json({"case": str(root), "name": case.config.name, "timezone": case.config.timezone,
                    "region": case.config.region, "operator": case.config.operator,
                    "initials": case.config.initials})
        return
    click.echo(f"Created the case {case.config.name!r} in {root}")
    click.echo(f"Exhibits will be marked {case.config.initials}/1, {case.config.initials}/2...")
    click.echo(f"Times without a zone will be read as {case.config.timezone}; phone numbers for {case.config.region}.")


# --- run -----------------------------------------------------------------------
class RunCommand(click.Command):
    """`ingest run`, whose options include every option the registered sources and parsers declare
    (IMAP's --host, calls' --map...), so a plugin's options appear exactly like the built-in ones.
    They are added when first needed (parsing `run`, or its help): every other command starts
    without importing every adapter (~0.2 s)."""

    def get_params(self, ctx):
        if not getattr(self, "adapters_added", False):
            self.adapters_added = True
            self.params.extend(adapter_params())
        return super().get_params(ctx)


def adapter_params() -> list[click.Option]:
    from ingest.kit import registry

    seen: dict[str, str] = {}
    params = []
    for adapter in registry.adapters():
        for option in adapter.cli_options:
            if option.flag in seen:
                if seen[option.flag] != adapter.name:
                    raise click.UsageError(f"{adapter.name} and {seen[option.flag]} both declare {option.flag}.")
                continue
            seen[option.flag] = adapter.name
            kind = (click.Choice(option.choices) if option.choices else
                    click.Path(path_type=Path) if option.type is Path else option.type)
            params.append(click.Option([option.flag, option.dest], help=option.help, metavar=option.metavar,
                                       multiple=option.multiple, is_flag=option.is_flag, default=option.default,
                                       show_default=option.default is not None and not option.is_flag, type=kind))
            for old in option.old_flags:     # still accepted; `renamed_options` says the new name
                params.append(click.Option([old, old_name_dest(option, old)], hidden=True, metavar=option.metavar,
                                           multiple=option.multiple, is_flag=option.is_flag, type=kind))
    return params


def old_name_dest(option, old: str) -> str:
    return f"{option.dest}__was_{old.lstrip('-').replace('-', '_')}"


def renamed_options(given: dict) -> dict:
    """Values given under an adapter option's old name move to its new name, with a note on stderr."""
    from ingest.kit import registry

    given = dict(given)
    for adapter in registry.adapters():
        for option in adapter.cli_options:
            for old in option.old_flags:
                value = given.pop(old_name_dest(option, old), None)
                if value in (None, (), False):
                    continue
                click.echo(f"ingest: {old} is now called {option.flag} for the {adapter.name} source; "
                           f"the old name still works for now.", err=True)
                if given.get(option.dest) in (None, (), False, option.default):
                    given[option.dest] = value
    return given


def ask_secret(prompt: str) -> str:
    click.echo("On a shared computer, prefer --password-env VAR to typing the password here.", err=True)
    return click.prompt(prompt, hide_input=True, err=True)


def refuse_foreign_options(source_name: str, chosen: list, given: dict) -> None:
    """An option meant for another source (--host with --source files) is a mistake worth saying."""
    from ingest.kit import registry

    mine = {option.dest for adapter in chosen for option in adapter.cli_options}
    for adapter in registry.adapters():
        for option in adapter.cli_options:
            if option.dest not in mine and given.get(option.dest) not in (None, (), False, option.default):
                raise UsageError(f"{option.flag} is for the {adapter.name} source; it does nothing with "
                                 f"--source {source_name}.", hint=f"Leave out {option.flag}, or choose the "
                                                                  "source it belongs to.")


def options_for(adapter_cls, given: dict) -> dict:
    """The options one adapter declared, as given, checked by the adapter itself."""
    mine = {option.dest for option in adapter_cls.cli_options}
    options = {key: value for key, value in given.items() if key in mine and value not in (None, (), False)}
    ask = ask_secret if sys.stdin.isatty() else None
    return adapter_cls.check_options(options, ask) if adapter_cls.cli_options else options


def print_summary(summary, as_json: bool, *, reparse: bool = False) -> None:
    from ingest.features.summary import reparse_lines, summary_lines

    if as_json:
        click.echo(json.dumps(summary.to_json(), ensure_ascii=False, sort_keys=True))
        return
    for line in (reparse_lines if reparse else summary_lines)(summary):
        click.echo(line)


@cli.command(cls=RunCommand)
@click.option("--source", "source_name", default="files", show_default=True, metavar="SOURCE",
              help="What to read: files (each file recognised by its content), eml, mbox, maildir, imap, sms, "
                   "calls, whatsapp, screenshots. Name one only to insist on it.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, readable=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the counts, for scripts.")
@click.pass_context
def run(ctx, source_name, paths, as_json, **given):
    """Keep everything a source holds, and read what it means.

    Originals are copied byte for byte into the case; your own files and
    mailbox are never changed. A re-run only adds what is new.

    \b
    ingest run ~/Evidence/folder "WhatsApp Chat with J.zip"
    ingest run --source whatsapp "WhatsApp Chat with J.zip"
    ingest run --source imap --host imap.example.com --user me@example.com --folder INBOX --folder Spam
    """
    from ingest import pipeline
    from ingest.kit import registry

    given = renamed_options(given)
    source_cls, parser_cls = registry.resolve_preset(source_name)
    refuse_foreign_options(source_name, [source_cls, parser_cls] if parser_cls else [source_cls], given)
    source_options = options_for(source_cls, given)
    parser_options = options_for(parser_cls, given) if parser_cls else {}
    with open_case(ctx, writable=True) as case:
        source = source_cls(list(paths), source_options)
        parser = parser_cls(parser_options) if parser_cls else None
        with RichProgress(f"Keeping {source_name}") as progress:
            summary = pipeline.run(case, source, parser, progress=progress)
    print_summary(summary, as_json)
    if summary.failed or summary.shortfalls() or summary.not_read:
        sys.exit(1)


# --- watch, note ----------------------------------------------------------------
@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--source", "source_name", default="screenshots", show_default=True,
              help="How to read the files that appear.")
@click.option("--once", is_flag=True, help="Keep what is there now, then stop.")
@output_options(table=False)
@click.pass_context
def watch(ctx, directory, source_name, once, as_json):
    """Watch a folder and keep each new file as soon as it is fully written.

    The folder is only read: nothing in it is moved, renamed or deleted. Files
    added while ingest was not running are kept when it starts. Stop with Ctrl-C.
    """
    from ingest.features.watch import watch_folder

    with open_case(ctx, writable=True) as case:
        summary = watch_folder(case, directory, source_name, once=once, progress_factory=RichProgress,
                               report=lambda text: click.echo(text, err=True))
    print_summary(summary, as_json)
    if summary.interrupted:
        sys.exit(130)
    if summary.failed:
        sys.exit(1)


@cli.command()
@click.argument("text")
@click.option("--at", "at", metavar="DATETIME", help="When it happened (default: now): " + USER_TIME_FORMS + ". "
              "A date alone is kept as that day, its time unknown; 'about' is kept with the time.")
@click.option("--where", "where", metavar="PLACE", help="Where it happened.")
@click.option("--attach", "attachments", multiple=True, type=click.Path(path_type=Path),
              help="A file that goes with the note (a voice recording, a photo of a letter). Repeatable.")
@click.option("--supersedes", metavar="ID", help="This note corrects an earlier one (both are kept).")
@click.option("--json", "as_json", is_flag=True, help="Print the note's record as JSON.")
@click.pass_context
def note(ctx, text, at, where, attachments, supersedes, as_json):
    """Write down something no file records: being followed, a car outside, a call to a landline.

    \b
    ingest note "Grey Ford Focus AB12 CDE parked opposite the house again" --at "2024-03-01 21:40" --where "Home"
    A note is never edited: to correct one, write a new note with --supersedes ID.
    """
    from ingest.features.notes import add_note
    from ingest.features.typed_times import described, how_read

    with open_case(ctx, writable=True) as case:
        record = add_note(case, text, at=at, where=where, attachments=list(attachments), supersedes=supersedes)
        reading = how_read(case, record)
    if as_json:
        print_json(record)
    else:
        click.echo(f"Noted {record['id']} {described(record)}.")
    if reading:
        click.echo(reading, err=as_json)


# --- reading the case -----------------------------------------------------------
def records_table(case: Case, records, *, title: str | None = None, ids: bool = True, wide: bool = False):
    """Records as a table and the footnotes its marks need. At 80 columns: short local time, kind,
    the other party, and the text cut with an ellipsis; `wide`: every field in full."""
    from zoneinfo import ZoneInfo

    from rich import box
    from rich.markup import escape

    from ingest.features import rows as rows_module
    from ingest.features.parties import PartyBook
    from ingest.features.timeline import one_line

    zone = ZoneInfo(case.config.timezone)
    if wide:
        table = Table(title=title, show_lines=False, expand=False)
        for column in ("id", "when", "kind", "from", "to", "what"):
            table.add_column(column, overflow="fold")
        for record in records:
            table.add_row(record["id"], rows_module.full_when(record),
                          record["kind"] + (f" {record['direction']}" if record.get("direction") else ""),
                          # what people wrote is shown as written, never read as rich markup
                          escape(", ".join(record["from"])), escape(", ".join(record["to"])),
                          escape(one_line(record, 10_000)))
        return table, []
    names = PartyBook.load(case).names
    shown = [rows_module.row(record, zone, names) for record in records]
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)

    used = []

    def column(name: str, values, most: int | None = None) -> None:
        # a fixed width for the short columns, so only the text is cut (with an ellipsis) to fit
        width = min(max([len(name), *map(len, values)]), most or 1000)
        used.append(width)
        table.add_column(name, no_wrap=True, min_width=width, max_width=width, overflow="ellipsis")

    if ids:
        column("id", [row.id[:8] for row in shown])
    column("when", [row.when for row in shown])
    column("kind", [row.kind for row in shown], 12)
    column("who", [row.party for row in shown], 18)
    # the text takes what is left of the terminal (three spaces between columns)
    table.add_column("what", no_wrap=True, overflow="ellipsis",
                     max_width=max(MIN_TEXT, out.width - sum(used) - 3 * len(used)))
    for row in shown:
        cells = [row.when, row.kind, escape(row.party), escape(row.what)]
        table.add_row(*([row.id[:8]] if ids else []), *cells)
    notes = rows_module.footnotes(shown, zone)
    if shown:
        notes.insert(0, f"Times are local to {zone.key}.")
    return table, notes


def print_table(case: Case, records, *, title: str | None = None, ids: bool = True, wide: bool = False) -> None:
    table, notes = records_table(case, records, title=title, ids=ids, wide=wide)
    if table.row_count == 0:
        click.echo("No records.", err=True)
        return
    # --wide: every row on one line however long, for a wide terminal or a file
    (Console(highlight=False, width=WIDE) if wide else out).print(table, crop=not wide)
    for line in notes:
        click.echo(line)


def checked_filters(case: Case, kinds, since, until) -> dict:
    """The record filters as the library takes them; an unknown kind is a usage error listing
    the kinds there are, never an empty table (an unknown party is one too: see parties)."""
    from ingest.model.records import KINDS

    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise UsageError(f"{unknown[0]!r} is not a kind of record.", hint=f"Choose one of: {', '.join(KINDS)}.")
    return {"since": time_bound(case, since), "until": time_bound(case, until), "kinds": list(kinds)}


TIME_FORMS_SAID = ("Write it as 2024-03-01, '2024-03-01 21:40', '2024-03-01 9pm', 01/03/2024 (in the case "
                   "region's day/month order) or 2024-03-01T21:40+01:00; read in the case's time zone.")


def party_option(command):
    return click.option("--party", "parties", multiple=True, metavar="NAME",
                        help="Only records involving this party (see `ingest party list`). Repeatable.")(command)


def filter_options(command):
    command = party_option(command)
    command = click.option("--until", metavar="WHEN", help="Only records before this time (a date alone: "
                                                            "its first moment). " + TIME_FORMS_SAID)(command)
    command = click.option("--since", metavar="WHEN", help="Only records from this time on. " + TIME_FORMS_SAID)(command)
    command = click.option("--kind", "kinds", multiple=True,
                           help="Only this kind (email, sms, call, whatsapp, screenshot, note, ...). Repeatable.")(command)
    return command


@cli.command(name="list")
@filter_options
@output_options(table=True)
@click.option("--wide", is_flag=True, help="Every field in full (ids, times with their offsets, from and to).")
@click.pass_context
def list_(ctx, kinds, since, until, parties, as_json, as_csv, wide):
    """List the records in the case, oldest first, with the ids `ingest show` takes."""
    from ingest.features import timeline

    fmt = chosen_format(as_json, as_csv)
    with open_case(ctx) as case:
        items = timeline.records(case, **checked_filters(case, kinds, since, until), parties=list(parties))
        if fmt == "json":
            timeline.write_json(items, sys.stdout)
        elif fmt == "csv":
            timeline.write_csv(items, sys.stdout)
        else:
            print_table(case, items, wide=wide)


@cli.command()
@click.argument("record_id")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
@click.pass_context
def show(ctx, record_id, as_json):
    """Show one record in full (the first characters of its id are enough)."""
    from ingest.features import timeline

    with open_case(ctx) as case:
        record = timeline.record(case, record_id)
    if record is None:
        raise UsageError(f"No single record has an id starting {record_id!r}.", hint="See `ingest list` for ids.")
    if as_json:
        print_json(record)
        return
    for key in ("id", "kind", "occurred_at", "occurred_at_source", "occurred_at_raw", "timezone_assumed",
                "acquired_at", "direction", "from", "to", "parties", "subject", "duration_s", "parent"):
        if record.get(key) not in (None, [], ""):
            click.echo(f"{key:>20}: {record[key]}")
    for item in record.get("marks", []):
        click.echo(f"{'marked':>20}: {item['as']}{' ' + item['reference'] if item['reference'] else ''} "
                   f"(since {item['marked_at']})")
    for key, value in record["original"].items():
        click.echo(f"{'original ' + key:>20}: {value}")
    click.echo(f"{'source':>20}: {record['source']['adapter']} / {record['source']['parser']} / "
               f"{record['source']['key']} {record['source']['locator'] or ''}")
    for item in record["derived"]:
        click.echo(f"{'derived':>20}: {item['type']} {item['blake3']} ({item['tool']})")
    if record.get("text"):
        click.echo("\n" + record["text"])


@cli.command()
@click.argument("query")
@party_option
@output_options(table=True)
@click.pass_context
def search(ctx, query, parties, as_json, as_csv):
    """Search the text of every record, including text read from screenshots.

    \b
    ingest search "kill"        ingest search '"outside your house"'
    """
    import sqlite3

    from ingest.features import timeline

    with open_case(ctx) as case:
        try:
            hits = list(timeline.search(case, query, list(parties)))
        except sqlite3.OperationalError:
            raise UsageError(f"Cannot search for {query!r}.", hint='Put phrases in double quotes, e.g. \'"at the door"\'.') from None
    fmt = chosen_format(as_json, as_csv)
    if fmt != "table":
        write = timeline.write_json if fmt == "json" else timeline.write_csv
        write((record for record, _snippet in hits), sys.stdout)
        return
    for record, snippet in hits:
        click.echo(f"{record['id'][:12]}  {record['occurred_at'] or 'time unknown'}  {record['kind']:<10}  {' '.join(snippet.split())}")
    if not hits:
        click.echo("Nothing found.", err=True)


@cli.command()
@filter_options
@output_options(table=True)
@click.option("--wide", is_flag=True, help="Every field in full (ids, times with their offsets, from and to).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]),
              help="The same as --json or --csv (table is the default).")
@click.pass_context
def timeline(ctx, kinds, since, until, parties, as_json, as_csv, wide, fmt):
    """Every record, of every kind, in the order it happened.

    Shows a series of incidents as the pattern it is. Times are local to the
    case's zone; a time marked * was written without a zone and read in it.
    """
    from ingest.features import timeline as timeline_module

    fmt = chosen_format(as_json, as_csv, None if fmt == "table" else fmt)
    with open_case(ctx) as case:
        items = timeline_module.events(case, **checked_filters(case, kinds, since, until), parties=list(parties))
        if fmt == "json":
            timeline_module.write_json(items, sys.stdout)
        elif fmt == "csv":
            timeline_module.write_csv(items, sys.stdout)
        else:
            print_table(case, items, title=f"Timeline of {case.config.name}", ids=False, wide=wide)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of exhibits.")
@click.pass_context
def exhibits(ctx, as_json):
    """List the exhibits: each original you hand over, marked with your initials and a number.

    A mark, once given, never changes. Attachments and photos in a chat are
    items of the exhibit they came in (e.g. SP/3 item 2).
    """
    from rich.markup import escape

    from ingest.features.exhibits import exhibit_list, give_marks

    with open_case(ctx, writable=True) as case:
        give_marks(case)
        listed = list(exhibit_list(case))
    if as_json:
        print_json(listed)
        return
    table = Table(show_lines=False, expand=False)
    for column in ("mark", "description", "source", "first event", "last event", "items", "SHA-256"):
        table.add_column(column, overflow="fold")
    for exhibit in listed:
        table.add_row(exhibit["mark"], escape(exhibit["description"]), escape(exhibit["source"]),
                      exhibit["first_event"] or "", exhibit["last_event"] or "", str(exhibit["items"]),
                      exhibit["sha256"])
    out.print(table)
    if not listed:
        click.echo("The case holds no originals yet.", err=True)


@cli.command()
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path), help="Where to write the HTML file.")
@party_option
@output_options(table=False)
@click.pass_context
def report(ctx, out_path, parties, as_json):
    """Write one self-contained HTML report an officer can read offline or print.

    It opens with a section per party: how often they made contact, when, and
    how many times after being asked to stop.
    """
    from ingest.features.report import write_report

    with open_case(ctx, writable=True, read_only_ok=True) as case:
        count = write_report(case, out_path, parties=list(parties))
    if as_json:
        print_json({"out": str(out_path), "records": count})
    else:
        click.echo(f"Wrote the report of {count} record(s) to {out_path}")
    say_unlogged(case)


@cli.command()
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path),
              help="A new folder, or a name ending in .zip.")
@filter_options
@click.option("--tsa", metavar="URL", help="Ask this RFC 3161 time-stamping authority to stamp the bundle's list "
                                           "of files (only its SHA-256 is sent).")
@click.option("--include-paths", is_flag=True, help="Show the full paths of the files on this computer "
                                                    "(by default only their folder and name).")
@click.option("--no-pdf", "no_pdf", is_flag=True, help="Leave out report.pdf (it is printed with Chromium).")
@click.option("--max-file-size", metavar="SIZE", help="Split into volumes of at most about SIZE each (e.g. 4G, "
                                                       "700M), for upload portals; each volume verifies alone.")
@output_options(table=False)
@click.pass_context
def export(ctx, out_path, kinds, since, until, parties, tsa, include_paths, no_pdf, max_file_size, as_json):
    """Make the bundle to hand to an investigator: originals, records, custody log, report,
    a signed list of every file, checkable with standard tools."""
    from ingest.features.export import export_bundle
    from ingest.features.volumes import export_volumes, parse_size

    limit = parse_size(max_file_size) if max_file_size else None
    with open_case(ctx, writable=True, read_only_ok=True) as case:
        options = dict(**checked_filters(case, kinds, since, until), party=list(parties),
                       include_paths=include_paths, tsa=tsa, pdf=not no_pdf, progress_factory=RichProgress)
        results = export_volumes(case, out_path, limit, **options) if limit else [export_bundle(case, out_path, **options)]
    for result in results:
        if result.removed_leftovers:
            click.echo(f"Removed {result.removed_leftovers} unfinished bundle(s) left by an export that was stopped.",
                       err=True)
        if result.tsa_problem:
            click.echo(f"ingest: {result.tsa_problem} The bundle was made without a time-stamp.", err=True)
    result = results[-1]
    say_unlogged(case)
    if as_json:
        print_json({"out": str(out_path), "records": sum(volume.records for volume in results),
                    "originals": sum(volume.files for volume in results),
                    "volumes": [str(volume.path) for volume in results],
                    "fingerprint": result.fingerprint, "seal": result.seal, "seal_line": result.seal_line,
                    "tsa_time": result.tsa_time})
        return
    for volume in results:
        click.echo(f"Exported {volume.records} record(s) and {volume.files} original(s) to {volume.path}")
    if len(results) > 1:
        click.echo(f"The bundle is in {len(results)} volumes; each one can be checked on its own.")
    click.echo(f"Signing key fingerprint (read this to the officer): {result.fingerprint}")
    click.echo(f"Seal of the custody log (line {result.seal_line}; the officer notes it): {result.seal}")
    if tsa:
        click.echo(f"Time-stamped by {tsa} at {result.tsa_time}." if result.tsa_time else
                   "Not time-stamped: the time-stamping authority gave no token.")


@cli.command()
@click.option("--tsa", metavar="URL", help="Also ask this RFC 3161 time-stamping authority to stamp the seal.")
@click.option("--json", "as_json", is_flag=True, help='Print {"seal", "line", "time"} as JSON.')
@click.pass_context
def seal(ctx, tsa, as_json):
    """Print a short code that fixes the custody log as it is now.

    Text it to the officer, write it down, or email it to yourself. Later,
    `ingest verify --seal CODE` proves the log up to now was not changed.
    """
    from ingest.features.seal import seal_log

    with open_case(ctx, writable=True) as case:
        made = seal_log(case, tsa=tsa)
    if made.tsa_problem:
        click.echo(f"ingest: {made.tsa_problem} The seal was made without a time-stamp.", err=True)
    if as_json:
        click.echo(json.dumps(made.to_json(), sort_keys=True))
        return
    click.echo(f"Seal: {made.code}")
    click.echo(f"It fixes the custody log's first {made.line} line(s), as of {made.time}. Keep it somewhere "
               "outside this computer (a text to the officer, an email to yourself, on paper).")
    if made.tsa_time:
        click.echo(f"Time-stamped by {tsa} at {made.tsa_time}.")


@cli.command()
@click.argument("bundle", required=False, type=click.Path(path_type=Path))
@click.option("--fingerprint", metavar="FP", help="BUNDLE: refuse it unless signed by the key with this fingerprint.")
@click.option("--seal", "seal_code", metavar="CODE", help="Check the custody log up to this seal is unchanged.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_context
def verify(ctx, bundle, fingerprint, seal_code, as_json):
    """Check that nothing in the case (or an exported BUNDLE) has changed.

    Re-hashes every original, checks every record's original is there, and
    walks the custody log's hash chain. Exits 1 and names each problem if
    anything does not hold.
    """
    if bundle is not None:
        import logging

        from ingest.features.bundle_verify import verify_bundle
        logging.getLogger("bagit").setLevel(logging.ERROR)     # its findings are printed once, as problems below
        result = verify_bundle(bundle, fingerprint=fingerprint, seal=seal_code)
    else:
        if fingerprint:
            raise UsageError("--fingerprint checks a bundle.", hint="Name the bundle: ingest verify BUNDLE --fingerprint FP")
        from ingest.features.verify import verify_case
        with open_case(ctx, writable=True, read_only_ok=True) as case:
            with RichProgress("Checking") as progress:
                result = verify_case(case, progress)
            if seal_code:
                from ingest.features.seal import check_seal
                check_seal(case.custody, seal_code, result)
            if not result.ok:
                # Never append to a case that does not hold: restoring its log from a backup must stay possible.
                result.notes.append("this check was not written to the custody log, because the case does not hold")
            else:
                case.log_now("verify", {}, {"ok": True, "objects": result.objects, "records": result.records})
                if case.unlogged:
                    result.notes.append("this check could not be written to the custody log: the case is read-only")
    if as_json:
        print_json(result.to_json())
    else:
        for problem in result.problems:     # what is wrong first, then what is merely worth knowing
            click.echo(f"PROBLEM {problem}")
        for note in result.notes:
            click.echo(f"note: {note}")
        if result.ok:
            click.echo(f"Everything holds: {result.objects} object(s), {result.records} record(s), "
                       f"{result.custody_lines} custody line(s).")
        else:
            click.echo(f"{len(result.problems)} problem(s) found.")
    sys.exit(0 if result.ok else 1)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the log's lines as JSON Lines, exactly as stored.")
@click.pass_context
def log(ctx, as_json):
    """Show the chain-of-custody log: every action taken on this case, in order."""
    with open_case(ctx) as case:
        if as_json:
            with open(case.custody.path, encoding="utf-8") as handle:
                for line in handle:
                    click.echo(line, nl=False)
            return
        for entry in case.custody.entries():
            # the case's owner sees the full paths kept in each line's private block
            detail = (entry.get("private") or {}).get("detail") or entry.get("detail") or {}
            what = (detail.get("source_key") or detail.get("name") or detail.get("explanation") or detail.get("out")
                    or detail.get("path") or (f"seal {detail['seal']}" if detail.get("seal") else ""))
            click.echo(printable(f"{entry['seq']:>6}  {entry['time']}  {entry['action']:<8}  {entry['operator']}  "
                                 f"{what}"))


@cli.command()
@click.option("--parser", "parser_name", help="Only originals read by this parser (e.g. whatsapp).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the counts.")
@click.pass_context
def reparse(ctx, parser_name, as_json):
    """Read stored originals again with this version's parsers.

    Old records are kept and marked as superseded, never deleted; the
    originals themselves are never touched.
    """
    from ingest import pipeline
    from ingest.kit import registry

    if parser_name:
        registry.parser(parser_name)
    with open_case(ctx, writable=True) as case:
        with RichProgress("Re-reading") as progress:
            summary = pipeline.reparse(case, parser_name, progress=progress)
    print_summary(summary, as_json, reparse=True)

# --- parties and marks --------------------------------------------------------------
def identifier_options(command):
    command = click.option("--handle", "handles", multiple=True, metavar="H",
                           help="A user name on a social network, as written. Repeatable.")(command)
    command = click.option("--alias", "aliases", multiple=True, metavar="TEXT",
                           help="A name as a WhatsApp export or a phone's contacts show it. Repeatable.")(command)
    command = click.option("--email", "emails", multiple=True, metavar="ADDR", help="An email address. Repeatable.")(command)
    command = click.option("--phone", "phones", multiple=True, metavar="N",
                           help="A phone number, read for the case's region. Repeatable.")(command)
    return command


def print_party(party: dict) -> None:
    who = " (the case owner)" if party["me"] else ""
    click.echo(f"{party['name']}{who}")
    for kind in ("phones", "emails", "aliases", "handles"):
        if party[kind]:
            click.echo(f"  {kind}: {', '.join(party[kind])}")
    if party.get("note"):
        click.echo(f"  note: {party['note']}")


@cli.group()
def party():
    """The people in the case and the numbers, addresses and names they use.

    \b
    ingest party add "Mark Ellis" --phone 07700900123 --alias Jordan --email m.ellis@example.net
    ingest party add "Sarah" --me --phone 07700900456        (you: your own numbers and addresses)
    ingest party show "Mark Ellis"
    """


@party.command(name="add")
@click.argument("name")
@identifier_options
@click.option("--me", is_flag=True, help="This is you, the person keeping the evidence.")
@click.option("--note", help="A few words about who this is.")
@click.option("--json", "as_json", is_flag=True, help="Print the party as JSON.")
@click.pass_context
def party_add(ctx, name, phones, emails, aliases, handles, me, note, as_json):
    """Add a person and the identifiers they use. Records already held are linked at once."""
    from ingest.features import parties

    with open_case(ctx, writable=True) as case:
        added = parties.add_party(case, name, phones=phones, emails=emails, aliases=aliases, handles=handles,
                                  me=me, note=note)
    if as_json:
        print_json(added)
    else:
        print_party(added)


@party.command(name="link")
@click.argument("name")
@identifier_options
@click.option("--json", "as_json", is_flag=True, help="Print the party as JSON.")
@click.pass_context
def party_link(ctx, name, phones, emails, aliases, handles, as_json):
    """Add more identifiers to a party; earlier records involve them from now on."""
    from ingest.features import parties

    with open_case(ctx, writable=True) as case:
        linked = parties.link(case, name, phones=phones, emails=emails, aliases=aliases, handles=handles)
    if as_json:
        print_json(linked)
    else:
        print_party(linked)


@party.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of parties.")
@click.pass_context
def party_list(ctx, as_json):
    """List the parties and their identifiers."""
    from ingest.features import parties

    with open_case(ctx) as case:
        found = parties.list_parties(case)
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("No parties yet. Add one with `ingest party add NAME --phone ...`.", err=True)
    for item in found:
        print_party(item)


@party.command(name="show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the pattern as one JSON object.")
@click.pass_context
def party_show(ctx, name, as_json):
    """How often a party made contact, by channel and week, and after being asked to stop."""
    from ingest.features import parties

    with open_case(ctx) as case:
        pattern = parties.show(case, name)
    if as_json:
        print_json(pattern)
        return
    click.echo(f"{pattern['name']}: {pattern['contacts']} contact(s) from them"
               + (f", {pattern['first']} to {pattern['last']}" if pattern["first"] else ""))
    if pattern["by_kind"]:
        click.echo("  by channel: " + ", ".join(f"{count} {kind}" for kind, count in pattern["by_kind"].items()))
    for request in pattern["requests_to_stop"]:
        click.echo(f"  asked to stop {request['at']}: {request['contacts_after']} contact(s) after it")
    if pattern["longest_gap"]:
        gap = pattern["longest_gap"]
        click.echo(f"  longest quiet spell: {gap['days']} days ({gap['from']} to {gap['to']})")
    for threat in pattern["threats"]:
        click.echo(f"  marked threat: {threat['record'][:12]} at {threat['at']}")


@party.command(name="suggest")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of suggestions.")
@click.pass_context
def party_suggest(ctx, as_json):
    """Links the case's records suggest. Nothing is linked until you run the command shown."""
    from ingest.features import parties

    with open_case(ctx) as case:
        found = parties.suggest(case)
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("Nothing to suggest.", err=True)
    for item in found:
        click.echo(f"- {item['reason']}\n  to link: {item['command']}")


@cli.command(name="mark")
@click.argument("record_id")
@click.option("--as", "as_", required=True, metavar="MARK", help="request-to-stop, threat or reported-to-police.")
@click.option("--reference", help="A crime reference number (for reported-to-police).")
@output_options(table=False)
@click.pass_context
def mark_(ctx, record_id, as_, reference, as_json):
    """Mark a record, e.g. the message where you asked them to stop. The record is not changed."""
    from ingest.features import parties

    with open_case(ctx, writable=True) as case:
        marked = parties.mark(case, record_id, as_, reference)
    if as_json:
        print_json(marked)
    else:
        click.echo(f"Marked {marked['record'][:12]} as {marked['mark']}.")


@cli.command()
@click.argument("record_id")
@click.option("--as", "as_", required=True, metavar="MARK", help="The mark to take off.")
@output_options(table=False)
@click.pass_context
def unmark(ctx, record_id, as_, as_json):
    """Take a mark off a record. Both the mark and its removal stay in the custody log."""
    from ingest.features import parties

    with open_case(ctx, writable=True) as case:
        ended = parties.unmark(case, record_id, as_)
    if as_json:
        print_json(ended)
    else:
        click.echo(f"{ended['record'][:12]} is no longer marked {ended['mark']}.")


@cli.command()
@click.option("--case", "app_case", type=click.Path(path_type=Path), metavar="DIR", help="The case to open.")
@click.option("--port", type=int, default=0, help="The port on 127.0.0.1 (default: a free one).")
@click.option("--no-browser", is_flag=True, help="Only print the address; do not open the browser.")
@click.pass_context
def app(ctx, app_case, port, no_browser):
    """Open ingest as a page in your web browser, on this computer only.

    Prints the address to open (it carries a key for this launch only). Stop with Ctrl-C.
    """
    from ingest.features.app import serve

    serve(resolve_case_dir(app_case or ctx.obj["case_dir"]), port=port, open_browser=not no_browser,
          say=lambda line: click.echo(line))


def printable(text: str) -> str:
    """Text for a terminal: control characters (from file names, message text) shown escaped,
    never sent to the terminal to act on."""
    return _CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def main() -> None:
    cli(prog_name="ingest")
