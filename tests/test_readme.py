"""The README's "Using it" section is the CLI as it is: every command shown there runs, as
written, against a scratch case, with the files it names put where it names them (examples/)
and the IMAP line pointed at the test Dovecot (tests/imap_server.py)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from email_helpers import message
from imap_server import Dovecot

REPO = Path(__file__).resolve().parent.parent
INGEST = Path(sys.executable).parent / "ingest"
EXAMPLES = REPO / "examples"
# What the README names, and the example that stands in for it.
FILES = {
    "~/Downloads/letters": EXAMPLES / "files",
    "~/Pictures/Screenshots": EXAMPLES / "screenshots",
    "WhatsApp Chat with D.zip": EXAMPLES / "whatsapp" / "WhatsApp Chat with Jordan Pike.zip",
    "sms-20240301.xml": EXAMPLES / "sms" / "sms-20240304083000.xml",
    "calls-20240301.xml": EXAMPLES / "calls" / "calls-20240304083000.xml",
    "call-log.csv": EXAMPLES / "calls" / "landline-call-log.csv",
    "Takeout/Mail/All.mbox": EXAMPLES / "mbox" / "Inbox-export.mbox",
    "odd-export.csv": EXAMPLES / "calls" / "landline-call-log.csv",
    "~/Maildir/cur": EXAMPLES / "eml",       # a Maildir: its messages in cur/, with new/ and tmp/ beside
    "~/Maildir/new": None,
    "~/Maildir/tmp": None,
}
SHELL_ONLY = {"read"}          # lines that are the shell's, not ingest's
RECORD_ID_SHOWN = "3f2a9c"     # the README's example id; the test marks a real record instead
FINGERPRINT_SHOWN = "XXXX XXXX ..."   # stands for the fingerprint `ingest export` printed


def using_it() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Using it\n"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S)[1]
    return [line for line in block.splitlines() if line.strip()]


def words(line: str, home: Path) -> list[str]:
    return [str(home / word[2:]) if word.startswith("~/") else word for word in shlex.split(line, comments=True)]


@pytest.fixture
def scratch(tmp_path):
    """A home and a working folder holding what the README names."""
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    for shown, example in FILES.items():
        target = home / shown[2:] if shown.startswith("~/") else work / shown
        target.parent.mkdir(parents=True, exist_ok=True)
        if example is None:
            target.mkdir()
        else:
            (shutil.copytree if example.is_dir() else shutil.copy2)(example, target)
    return home, work


def test_every_command_in_using_it_runs_as_written(scratch):
    home, work = scratch
    lines = using_it()
    env = dict(os.environ, HOME=str(home))
    env.pop("INGEST_CASE", None)
    ran = []
    fingerprint = None
    with Dovecot() as server:
        user = server.add_user("me")
        server.add_messages(user, [message(1), message(2)])
        server.add_messages(user, [message(3)], folder="Spam")
        for line in lines:
            args = words(line, home)
            if args[0] == "export":
                name, _, value = args[1].partition("=")
                env[name] = words(value, home)[0]          # the shell expands ~ after = too
                continue
            if args[0] in SHELL_ONLY:
                env["IMAP_PASSWORD"] = user.password          # what `read -rs IMAP_PASSWORD` would hold
                continue
            assert args[0] == "ingest", line
            if args[1] == "run" and "imap" in args:
                args = [server_address(arg, server, user) for arg in args] + ["--port", str(server.port),
                                                                               "--ca-file", str(server.cert)]
            if RECORD_ID_SHOWN in args:
                args[args.index(RECORD_ID_SHOWN)] = outgoing_sms(env, work)
            if FINGERPRINT_SHOWN in args:
                args[args.index(FINGERPRINT_SHOWN)] = fingerprint
            if args[1] == "watch":
                code = watch_then_ctrl_c(args, env, work)
                assert code == 130, line
            else:
                result = subprocess.run([str(INGEST), *args[1:]], capture_output=True, text=True, env=env, cwd=work,
                                        timeout=300, stdin=subprocess.DEVNULL)
                assert result.returncode == 0, f"{line}\n{result.stdout}{result.stderr}"
                assert "Traceback" not in result.stderr
                if args[1] == "export":
                    fingerprint = result.stdout.split("read this to the officer): ", 1)[1].splitlines()[0]
            ran.append(args[1])
    assert (work / "report.html").is_file() and (work / "bundle.zip").is_file()
    assert {"init", "run", "watch", "note", "party", "mark", "timeline", "list", "search", "report", "export",
            "verify", "log"} <= set(ran)


def server_address(arg: str, server: Dovecot, user) -> str:
    return {"imap.example.com": "127.0.0.1", "me@example.com": user.name}.get(arg, arg)


def outgoing_sms(env: dict, work: Path) -> str:
    import json

    listed = subprocess.run([str(INGEST), "list", "--kind", "sms", "--json"], capture_output=True, text=True,
                            env=env, cwd=work, timeout=120)
    return next(record["id"][:8] for record in json.loads(listed.stdout) if record["direction"] == "outgoing")


def watch_then_ctrl_c(args: list[str], env: dict, work: Path) -> int:
    process = subprocess.Popen([str(INGEST), *args[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, cwd=work)
    lines = []
    for line in process.stderr:           # "Watching ..." once it is ready
        lines.append(line)
        if line.startswith("Watching"):
            break
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    return process.returncode


def test_the_exit_codes_in_the_readme_are_those_in_the_help():
    from click.testing import CliRunner

    from ingest.cli import cli

    text = (REPO / "README.md").read_text()
    section = text[text.index("## Using it\n"):text.index("## Using it as a library")]
    readme = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", section, re.M))
    epilogue = CliRunner().invoke(cli, ["--help"]).stdout.split("Exit codes:\n")[1]
    shown = dict(re.findall(r"^\s+(\d+)\s+(.+)$", epilogue, re.M))
    assert readme == shown and set(shown) == {"0", "1", "2", "3", "70", "130"}
