"""Shared fixtures: a fresh case, the CLI runner, and the real-world corpus (skipped when absent)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest.case import Case
from ingest.cli import cli

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def case(tmp_path) -> Case:
    opened = Case.init(tmp_path / "case", name="Test case", timezone="Europe/London", region="GB", operator="Tester")
    yield opened
    opened.close()


@pytest.fixture
def case_dir(tmp_path) -> Path:
    root = tmp_path / "case"
    Case.init(root, name="Test case", timezone="Europe/London", region="GB", operator="Tester").close()
    return root


class Ingest:
    """Runs `ingest --case DIR ...` in-process and returns the click Result."""

    def __init__(self, case_dir: Path):
        self.case_dir = case_dir
        self.runner = CliRunner()

    def __call__(self, *args, input=None, env=None):
        return self.runner.invoke(cli, ["--case", str(self.case_dir), *map(str, args)], input=input, env=env,
                                  catch_exceptions=False)

    def json(self, *args):
        result = self(*args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def ingest(case_dir) -> Ingest:
    return Ingest(case_dir)


@pytest.fixture(scope="session")
def corpus() -> Path:
    root = Path(os.environ.get("INGEST_CORPUS") or REPO.parent / "shared" / "corpus")
    if not root.is_dir():
        pytest.skip("the shared real-world corpus is not present")
    return root


@pytest.fixture
def filled(tmp_path, ingest):
    """A case holding three small text files, kept through the CLI."""
    source = tmp_path / "in"
    source.mkdir()
    for number in range(3):
        (source / f"item{number}.txt").write_text(f"message number {number}\n")
    ingest.json("run", "--source", "files", source, "--json")
    return ingest


def mounted_tmpfs(folder: Path, size: str):
    """A real tmpfs of `size` at `folder` (needs root), unmounted after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; tests/test_store.py injects short writes instead")
    folder.mkdir(exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)])


@pytest.fixture
def small_disk(tmp_path):
    """A real 8 MiB tmpfs to hold a case."""
    yield from mounted_tmpfs(tmp_path / "disk", "8m")


def ended(pids, within: float = 20) -> bool:
    """Have these processes all ended (within `within` seconds)? A zombie has: whoever adopted it
    after the fork server left may never reap it."""
    deadline = time.monotonic() + within
    while True:
        living = []
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    state = handle.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                living.append(pid)
        if not living or time.monotonic() > deadline:
            return not living
        time.sleep(0.05)


def descendants(pid: int) -> list[int]:
    """Every living process below `pid`, from /proc (children, their children...; zombies left out)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    state, ppid = handle.read().rsplit(")", 1)[1].split()[:2]
            except (OSError, IndexError, ValueError):
                continue
            if state != "Z":
                parents.setdefault(int(ppid), []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        for child in parents.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found
