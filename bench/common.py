"""Small helpers shared by the benchmarks: timing, peak memory of a child, printing figures."""

from __future__ import annotations

import compileall
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
INGEST = str(VENV_BIN / "ingest")
REPO = Path(__file__).resolve().parent.parent


def compile_ingest() -> None:
    """Ingest's modules compiled before anything is timed: where PYTHONDONTWRITEBYTECODE is set
    (this workplace's shells set it), each run would otherwise compile every module changed since
    its byte code was written (the whole tree: ~0.15 s of every run)."""
    for package in ("ingest", "store", "adapters"):
        compileall.compile_dir(REPO / package, quiet=1)


compile_ingest()

# Runs a command and prints its own peak RSS in KiB on stderr's last line; works for any child.
PEAK_WRAPPER = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
                "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
                "sys.exit(r.returncode)")


def timed(command: list[str] | str, *, shell: bool = False, env: dict | None = None) -> tuple[float, int]:
    """(seconds, peak RSS in MiB) of one command run to completion; raises if it fails."""
    argv = command if not shell else ["bash", "-c", command]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"benchmark command failed: {argv}\n{result.stderr[-2000:]}")
    peak = int(result.stderr.strip().splitlines()[-1].split()[1]) // 1024
    return elapsed, peak


def drop_case(path: Path) -> None:
    subprocess.run(["rm", "-rf", str(path)], check=True)


def new_case(path: Path) -> None:
    drop_case(path)
    subprocess.run([INGEST, "init", str(path), "--operator", "bench"], check=True, stdout=subprocess.DEVNULL)


def row(label: str, seconds: float, reference: float | None = None, extra: str = "") -> None:
    ratio = f"{seconds / reference:6.2f}x" if reference else "       "
    print(f"  {label:<48} {seconds:8.3f} s  {ratio}  {extra}")


def self_peak_mib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def cpu_note() -> str:
    return f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"


def peak_kib(rss_file: Path) -> int:
    """Max RSS of the ingest process itself, by GNU time: the rusage a parent gets from wait4
    would count the parent's own memory copied at fork."""
    return int(rss_file.read_text().split()[-1])


def children_cpu() -> float:
    """CPU seconds (user + system) of the child processes waited for so far: for an `ingest` run,
    its own process with its threads (the workers it starts are the fork server's children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_call(function, *args):
    """(result, seconds) of one call in this process."""
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start
