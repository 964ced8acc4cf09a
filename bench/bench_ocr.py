"""Screenshot benchmark: OCR throughput of `ingest run --source screenshots`.

100 phone-size (1080x2400) chat screenshots (--quick: 10), rendered with Pillow:
1. bare `pytesseract.image_to_string` over them, one at a time, pinned to one core;
2. `ingest run --source screenshots` pinned to one core (taskset);
3. bare `pytesseract.image_to_string` with one thread per core;
4. `ingest run --source screenshots` on all cores;
5. the same `ingest run` again over the same folder (everything already held).
Every bare run uses OMP_THREAD_LIMIT=1, as ingest does (FACTS.md: tesseract's own
threads are several times slower here), so the comparison is tesseract against
tesseract plus everything ingest adds: hashing, storing, EXIF, the word-box TSV,
the thumbnail, the index and the custody log.

Targets: all-core speed-up >= 1.8x on 2 cores; ingest overhead beyond tesseract < 10%;
the second run < 2% of the first.

Run: .venv/bin/python bench/bench_ocr.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ["OMP_THREAD_LIMIT"] = "1"
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(REPO / "tests"))
import pytesseract  # noqa: E402
from common import INGEST, cpu_note, new_case, timed  # noqa: E402
from image_helpers import chat_screenshot, conversation  # noqa: E402


def render(folder: Path, count: int) -> list[Path]:
    """Distinct screenshots (their own contact, clock and messages), Android-style names."""
    paths = []
    for number in range(count):
        picture, _said = chat_screenshot(conversation(14, start=number), contact=f"+44 7700 900{number:03d}",
                                         clock=f"{20 + number // 60:02d}:{number % 60:02d}")
        path = folder / f"Screenshot_20240301-{21 + number // 3600:02d}{number // 60 % 60:02d}{number % 60:02d}.png"
        picture.save(path)
        paths.append(path)
    return paths


def bare(paths: list[Path], workers: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda path: pytesseract.image_to_string(str(path)), paths))
    return time.perf_counter() - start


def pinned_to_one_core(run):
    everything = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(everything)})      # tesseract children inherit it
    try:
        return run()
    finally:
        os.sched_setaffinity(0, everything)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 screenshots instead of 100")
    count = 10 if parser.parse_args().quick else 100
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="bench-ocr-") as work:
        work_path = Path(work)
        folder = work_path / "Screenshots"
        folder.mkdir()
        paths = render(folder, count)
        print(f"{count} phone screenshots 1080x2400 ({cpu_note()}); tesseract {pytesseract.get_tesseract_version()}")

        bare_one = pinned_to_one_core(lambda: bare(paths, 1))
        case_one = work_path / "case-one"
        new_case(case_one)
        ingest_one, _ = timed(["taskset", "-c", str(min(os.sched_getaffinity(0))), INGEST, "--case", str(case_one),
                               "run", "--source", "screenshots", str(folder), "--json"])
        bare_all = bare(paths, cores)
        case_all = work_path / "case-all"
        new_case(case_all)
        ingest_all, peak = timed([INGEST, "--case", str(case_all), "run", "--source", "screenshots", str(folder),
                                  "--json"])
        again, _ = timed([INGEST, "--case", str(case_all), "run", "--source", "screenshots", str(folder), "--json"])

    def rate(seconds: float) -> str:
        return f"{count / seconds:6.2f} images/s ({seconds:7.2f} s)"

    print(f"  bare pytesseract.image_to_string, 1 core     {rate(bare_one)}")
    print(f"  ingest run --source screenshots, 1 core      {rate(ingest_one)}  "
          f"overhead beyond tesseract {ingest_one / bare_one - 1:+.1%} (target < +10%)")
    print(f"  bare pytesseract.image_to_string, {cores} cores    {rate(bare_all)}  "
          f"speed-up {bare_one / bare_all:.2f}x")
    print(f"  ingest run --source screenshots, {cores} cores     {rate(ingest_all)}  "
          f"speed-up {ingest_one / ingest_all:.2f}x (target >= 1.8x on 2 cores); "
          f"overhead beyond tesseract {ingest_all / bare_all - 1:+.1%} (target < +10%); peak {peak} MiB")
    print(f"  second ingest run, same images               {again:7.2f} s = {again / ingest_all:.1%} of the first "
          "(target < 2%; includes starting the command)")


if __name__ == "__main__":
    main()
