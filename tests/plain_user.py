"""Running ingest as `nobody` from a test that runs as root.

A checkout often sits under a private folder (a home folder is 0700), which `nobody` cannot
enter: neither the checkout's code nor its .venv is reachable. So what `nobody` needs is
linked (or copied) into a folder it can reach: ingest's own packages and the virtualenv's
installed packages, run with the interpreter the venv was made from. When `nobody` cannot
run that interpreter either (it lives under a private folder too), the test is skipped,
saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
PACKAGES = ("ingest", "adapters", "store")


def ingest_as_nobody(area: Path) -> tuple[list[str], dict[str, str]]:
    """The command (and its environment) that runs `ingest` as nobody, from copies under `area`
    (a folder nobody can reach)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to the user nobody")
    python = os.path.realpath(sys.executable)
    probe = subprocess.run([*AS_NOBODY, python, "-c", "import json"], capture_output=True, text=True, timeout=60,
                           cwd="/")
    if probe.returncode != 0:
        pytest.skip(f"the user nobody cannot run the Python interpreter {python} (a folder above it is private "
                    f"to its owner: {probe.stderr.strip()}); install Python where every user can run it")
    site = area / "site-packages"
    for installed in dict.fromkeys((sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])):
        shutil.copytree(installed, site, copy_function=_link_or_copy, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__editable__*", "*.pth"))
    for package in PACKAGES:
        shutil.copytree(REPO / package, site / package, copy_function=_link_or_copy, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for path in [site, *site.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    command = [*AS_NOBODY, python, "-c", "import sys; from ingest.cli import main; sys.argv[0] = 'ingest'; main()"]
    return command, {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(site),
                     "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}


def _link_or_copy(source: str, target: str) -> None:
    """A hard link costs nothing; across file systems, a copy. Either way readable by all."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    if not os.stat(target).st_mode & 0o004:
        os.chmod(target, os.stat(target).st_mode | 0o444)
