"""`--source screenshots`: pictures kept untouched, dated from EXIF, the file name or mtime,
read by the real tesseract, and findable with `ingest search`."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

import adapters.image._ocr as image_ocr
import adapters.image.parser as image_parser
from adapters.image._metadata import time_from_filename
from image_helpers import chat_screenshot, conversation, exif_jpeg, png_bomb, recall

INGEST = Path(sys.executable).parent / "ingest"
TESSERACT = image_parser.tesseract_tool()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored(case_dir: Path, blake3_hex: str) -> Path:
    return case_dir / "objects" / blake3_hex[:2] / blake3_hex


def derived(case_dir: Path, record: dict, kind: str) -> bytes:
    (entry,) = [item for item in record["derived"] if item["type"] == kind]
    return stored(case_dir, entry["blake3"]).read_bytes()


def keep(ingest, folder: Path) -> tuple[dict, dict[str, dict]]:
    summary = ingest.json("run", "--source", "screenshots", folder, "--json")
    return summary, {r["original"]["filename"]: r for r in ingest.json("list", "--json")}


# --- OCR ---------------------------------------------------------------------------------
def test_a_phone_screenshot_is_read_kept_and_found_by_search(tmp_path, ingest):
    picture, said = chat_screenshot(conversation())
    assert picture.size == (1080, 2400)
    path = tmp_path / "in" / "Screenshot_20240301-214105.png"
    path.parent.mkdir()
    picture.save(path)
    before = sha256(path), path.stat().st_mtime_ns

    summary, records = keep(ingest, path.parent)
    assert (summary["new"], summary["records"], summary["failed"], summary["unparsed"]) == (1, 1, 0, 0)
    record = records[path.name]
    assert record["kind"] == "screenshot"
    assert record["source"]["parser"] == "image 1"
    assert (record["occurred_at"], record["occurred_at_source"], record["occurred_at_raw"],
            record["timezone_assumed"]) == ("2024-03-01T21:41:05+00:00", "filename", "Screenshot_20240301-214105.png",
                                            True)
    assert recall(said, record["text"]) >= 0.95
    assert TESSERACT == "tesseract 5.3.0"
    assert {(d["type"], d["tool"]) for d in record["derived"]} == {
        ("ocr_text", TESSERACT), ("ocr_tsv", TESSERACT), ("thumbnail", f"Pillow {Image.__version__}")}
    assert derived(ingest.case_dir, record, "ocr_text").decode().replace("\x0c", "").strip() == record["text"]
    tsv = derived(ingest.case_dir, record, "ocr_tsv").decode().splitlines()
    assert tsv[0].split("\t")[-1] == "text" and any(row.endswith("\tDaniel") for row in tsv)
    assert record["metadata"]["ocr"]["words"] >= 80
    thumbnail = Image.open(io.BytesIO(derived(ingest.case_dir, record, "thumbnail")))
    assert (thumbnail.format, thumbnail.size) == ("JPEG", (144, 320))
    # the original is the file's exact bytes, and the file itself is as it was
    assert hashlib.sha256(stored(ingest.case_dir, record["original"]["blake3"]).read_bytes()).hexdigest() == before[0]
    assert (sha256(path), path.stat().st_mtime_ns) == before

    found = ingest("search", "Daniel", "--json")
    assert [hit["id"] for hit in json.loads(found.stdout)] == [record["id"]]


def test_text_already_read_from_the_same_bytes_is_not_read_again(tmp_path, ingest, monkeypatch):
    picture, said = chat_screenshot(conversation(2), size=(720, 1100))
    assert said == "You blocked me again but that will not stop me\nSaw you leave the gym at six tonight"
    (tmp_path / "in").mkdir()
    picture.save(tmp_path / "in" / "Screenshot 2024-03-01 at 21.41.05.png")
    _summary, first = keep(ingest, tmp_path / "in")
    calls = []
    real = image_ocr.ocr
    monkeypatch.setattr(image_ocr, "ocr", lambda pixels: calls.append(pixels) or real(pixels))
    monkeypatch.setattr(image_parser.ImageParser, "version", "2")    # a newer parser reads it again
    assert ingest.json("reparse", "--parser", "image", "--json")["records"] == 1
    assert calls == []
    (again,) = ingest.json("list", "--json")
    (before,) = first.values()
    assert again["source"]["parser"] == "image 2" and again["text"] == before["text"] and "gym" in again["text"]
    assert again["derived"] == before["derived"]


# --- EXIF ----------------------------------------------------------------------------------
def test_exif_time_with_its_offset_gps_and_camera(tmp_path, ingest):
    (tmp_path / "in").mkdir()
    exif_jpeg(tmp_path / "in" / "PXL_1.jpg", taken="2024:03:01 21:41:05", offset="+01:00", make="Google", model="Pixel 8",
              gps=("N", (51.0, 30.0, 12.5), "W", (0.0, 7.0, 39.0)))
    _summary, records = keep(ingest, tmp_path / "in")
    record = records["PXL_1.jpg"]
    assert (record["kind"], record["occurred_at"], record["occurred_at_source"], record["occurred_at_raw"],
            record["timezone_assumed"]) == ("image", "2024-03-01T21:41:05+01:00", "exif:DateTimeOriginal",
                                            "2024:03:01 21:41:05 +01:00", False)
    meta = record["metadata"]
    assert (meta["make"], meta["model"]) == ("Google", "Pixel 8")
    assert meta["gps"] == {"latitude": 51.5034722, "longitude": -0.1275}
    assert meta["exif"]["EXIF DateTimeOriginal"] == "2024:03:01 21:41:05"


def test_exif_time_without_offset_is_read_in_the_case_zone_and_dst_is_flagged(tmp_path, ingest):
    folder = tmp_path / "in"
    folder.mkdir()
    exif_jpeg(folder / "summer.jpg", taken="2024:07:01 09:00:00", make="Apple", model="iPhone 12")
    exif_jpeg(folder / "clocks-back.jpg", taken="2024:10:27 01:30:00", make="Apple", model="iPhone 12")
    exif_jpeg(folder / "clocks-forward.jpg", taken="2024:03:31 01:30:00", make="Apple", model="iPhone 12")
    _summary, records = keep(ingest, folder)
    summer, back, forward = records["summer.jpg"], records["clocks-back.jpg"], records["clocks-forward.jpg"]
    assert (summer["occurred_at"], summer["timezone_assumed"]) == ("2024-07-01T09:00:00+01:00", True)
    assert (back["occurred_at"], back["metadata"].get("dst_ambiguous")) == ("2024-10-27T01:30:00+01:00", True)
    assert forward["metadata"].get("dst_nonexistent") is True
    assert "dst_ambiguous" not in summer["metadata"] and "dst_nonexistent" not in summer["metadata"]


# --- file names and mtime ----------------------------------------------------------------------
@pytest.mark.parametrize("name, expected, app", [
    ("Screenshot_20240301-214105.png", datetime(2024, 3, 1, 21, 41, 5), None),
    ("Screenshot_20240301-214105_WhatsApp.jpg", datetime(2024, 3, 1, 21, 41, 5), "WhatsApp"),
    ("Screenshot_2024-03-01-21-41-05-123_com.whatsapp.jpg", datetime(2024, 3, 1, 21, 41, 5, 123000), "com.whatsapp"),
    ("Screenshot 2024-03-01 at 21.41.05.png", datetime(2024, 3, 1, 21, 41, 5), None),
    ("Screen Shot 2024-03-01 at 9.41.05\u202fPM.png", datetime(2024, 3, 1, 21, 41, 5), None),
    ("Screenshot 2024-03-01 214105.png", datetime(2024, 3, 1, 21, 41, 5), None),
    ("Screenshot_20240301-214105 (1).png", datetime(2024, 3, 1, 21, 41, 5), None),
])
def test_screenshot_file_names_give_the_local_time(name, expected, app):
    found = time_from_filename(name)
    assert (found.naive, found.app) == (expected, app)


@pytest.mark.parametrize("name", ["IMG_0001.png", "Screenshot_20241399-214105.png", "holiday 2024-03-01.png"])
def test_other_names_give_no_time(name):
    assert time_from_filename(name) is None


def test_file_name_times_end_to_end_then_the_mtime(tmp_path, ingest):
    folder = tmp_path / "in"
    folder.mkdir()
    names = {"Screenshot_2024-07-14-08-05-09-250_com.whatsapp.jpg": "2024-07-14T08:05:09.250000+01:00",
             "Screenshot 2024-12-24 at 23.59.58.png": "2024-12-24T23:59:58+00:00",
             "Screenshot 2024-03-01 214105.png": "2024-03-01T21:41:05+00:00"}
    for shade, name in enumerate([*names, "untitled.png"]):     # distinct bytes: each is an original of its own
        Image.new("RGB", (400, 720), (255, 255, 250 - shade)).save(folder / name)
    os.utime(folder / "untitled.png", (1709329265, 1709329265))
    _summary, records = keep(ingest, folder)
    for name, expected in names.items():
        assert (records[name]["occurred_at"], records[name]["occurred_at_source"], records[name]["kind"]) == \
            (expected, "filename", "screenshot"), name
    assert records["Screenshot_2024-07-14-08-05-09-250_com.whatsapp.jpg"]["metadata"]["screenshot_app"] == "com.whatsapp"
    plain = records["untitled.png"]
    assert (plain["occurred_at"], plain["occurred_at_source"], plain["occurred_at_raw"], plain["timezone_assumed"]) == \
        ("2024-03-01T21:41:05+00:00", "file:mtime", "1709329265000000000", False)
    assert plain["kind"] == "screenshot"     # a screen-sized PNG from no camera


def test_images_are_sniffed_by_content_for_the_files_source(tmp_path, ingest):
    folder = tmp_path / "in"
    folder.mkdir()
    exif_jpeg(folder / "no-extension", taken="2023:05:06 07:08:09", offset="+00:00", make="Sony", model="A7")
    (folder / "notes.txt").write_text("not a picture\n")
    ingest.json("run", "--source", "files", folder, "--json")
    parsers = {r["original"]["filename"]: r["source"]["parser"] for r in ingest.json("list", "--json")}
    assert parsers == {"no-extension": "image 1", "notes.txt": "file 1"}


# --- bad input ------------------------------------------------------------------------------
def test_a_decompression_bomb_is_kept_but_never_decoded(tmp_path, case_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    bomb = png_bomb(folder / "bomb.png")
    # a fresh interpreter runs ingest, so its peak memory is that run's alone
    measured = ("import resource, subprocess, sys; run = subprocess.run(sys.argv[1:]); "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(run.returncode)")
    result = subprocess.run([sys.executable, "-c", measured, str(INGEST), "--case", str(case_dir), "run", "--source",
                             "screenshots", str(folder), "--json"], capture_output=True, text=True, timeout=120)
    peak_kib = int(result.stderr.split()[-1])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["failed"] == 0
    assert "warning: bomb.png: claims 900,000,000 pixels, too many to open safely (a possible 'decompression " \
        "bomb'); it is kept exactly as it is, but it was not opened and its text was not read" in result.stderr
    assert "Traceback" not in result.stderr
    # 900 million pixels would need gigabytes decoded; the run stayed small
    assert peak_kib < 400 * 1024
    listed = subprocess.run([str(INGEST), "--case", str(case_dir), "list", "--json"], capture_output=True, text=True)
    (record,) = json.loads(listed.stdout)
    assert record["derived"] == [] and record["text"] is None and record["kind"] == "image"
    assert record["metadata"]["refused"].startswith("claims 900,000,000 pixels, too many to open safely")
    assert sha256(stored(case_dir, record["original"]["blake3"])) == sha256(bomb)


def test_a_truncated_jpeg_is_kept_with_its_exif_and_a_warning(tmp_path, ingest):
    folder = tmp_path / "in"
    folder.mkdir()
    whole = exif_jpeg(tmp_path / "whole.jpg", taken="2024:02:02 10:00:00", offset="+00:00", make="Apple",
                      model="iPhone 15", size=(800, 600))
    data = whole.read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) * 6 // 10])
    summary, records = keep(ingest, folder)
    assert (summary["new"], summary["failed"], summary["unparsed"]) == (1, 0, 0)
    record = records["cut.jpg"]
    assert (record["occurred_at"], record["metadata"]["make"]) == ("2024-02-02T10:00:00+00:00", "Apple")
    assert record["derived"] == [] and record["text"] is None
    (warning,) = _custody_warnings(ingest.case_dir, "cut.jpg")
    assert warning.startswith("the picture could not be fully decoded (image file is truncated")
    assert sha256(stored(ingest.case_dir, record["original"]["blake3"])) == hashlib.sha256(data[: len(data) * 6 // 10]).hexdigest()


def test_a_file_named_like_a_picture_that_is_not_one_is_kept_as_unparsed(tmp_path, ingest):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "Screenshot_20240301-214105.png").write_bytes(b"I will find you.\n")
    result = ingest("run", "--source", "screenshots", folder, "--json")
    assert result.exit_code == 1      # not read as the source named: said, and not a success
    summary = json.loads(result.stdout)
    records = {r["original"]["filename"]: r for r in ingest.json("list", "--json")}
    assert (summary["new"], summary["unparsed"], summary["failed"]) == (1, 1, 0)
    record = records["Screenshot_20240301-214105.png"]
    assert record["kind"] == "unparsed"
    assert record["metadata"]["error"] == "is not a picture: its bytes are not PNG, JPEG, WebP, GIF, HEIC or TIFF"
    assert stored(ingest.case_dir, record["original"]["blake3"]).read_bytes() == b"I will find you.\n"


def corrupt_exif_jpeg(path: Path) -> Path:
    """A JPEG whose EXIF directory claims 5000 entries and points past its own end."""
    clean = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(clean, "JPEG")
    tiff = b"MM\x00*\x00\x00\x00\x08" + (5000).to_bytes(2, "big") + b"\x01\x0f\x00\x02\xff\xff\xff\xff\x7f\xff\xff\xf0"
    segment = b"Exif\x00\x00" + tiff
    data = clean.getvalue()
    path.write_bytes(data[:2] + b"\xff\xe1" + (len(segment) + 2).to_bytes(2, "big") + segment + data[2:])
    return path


def _custody_warnings(case_dir: Path, filename: str) -> list[str]:
    """The warnings on the closing ("records") line of the original acquired under `filename`."""
    acquired = None
    for line in (case_dir / "custody.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["action"] == "acquire" and entry["detail"].get("filename") == filename:
            acquired = entry["subjects"]
        elif entry["action"] == "records" and entry["subjects"] == acquired:
            return entry["detail"].get("warnings", [])
    return []


# Pillow warns again when the OCR thread opens the file; the CLI silences that, pytest shows it.
@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")
def test_corrupt_exif_is_a_warning_and_the_picture_is_still_read(tmp_path, ingest):
    folder = tmp_path / "in"
    folder.mkdir()
    path = corrupt_exif_jpeg(folder / "IMG_2001.jpg")
    os.utime(path, (1709329265, 1709329265))
    summary, records = keep(ingest, folder)
    assert (summary["new"], summary["unparsed"], summary["failed"]) == (1, 0, 0)
    record = records["IMG_2001.jpg"]
    assert (record["occurred_at"], record["occurred_at_source"]) == ("2024-03-01T21:41:05+00:00", "file:mtime")
    assert {d["type"] for d in record["derived"]} == {"ocr_text", "ocr_tsv", "thumbnail"}
    warnings = _custody_warnings(ingest.case_dir, "IMG_2001.jpg")
    assert warnings and all(w.startswith("its EXIF data") for w in warnings), warnings


def test_a_picture_without_text_has_empty_ocr_and_no_record_text(tmp_path, ingest):
    folder = tmp_path / "in"
    folder.mkdir()
    gradient = Image.linear_gradient("L").resize((600, 400)).convert("RGB")
    gradient.save(folder / "sky.png")
    _summary, records = keep(ingest, folder)
    record = records["sky.png"]
    assert record["text"] is None
    assert derived(ingest.case_dir, record, "ocr_text").strip() == b""
    assert record["metadata"]["ocr"] == {"words": 0, "mean_confidence": None, "language": "eng"}
    assert _custody_warnings(ingest.case_dir, "sky.png") == []


def test_a_picture_attached_to_an_email_is_read_and_linked_to_it(tmp_path, ingest):
    from email.message import EmailMessage

    photo = exif_jpeg(tmp_path / "car.jpg", taken="2024:03:05 07:30:00", offset="+00:00", make="Samsung",
                      model="SM-S918B", gps=("N", (51.0, 30.0, 0.0), "W", (0.0, 7.0, 30.0)))
    shot = tmp_path / "shot.png"
    chat_screenshot(conversation(2), size=(720, 1100))[0].save(shot)
    message = EmailMessage()
    message["From"], message["To"] = "j.doe@example.com", "me@example.org"
    message["Subject"], message["Date"] = "You know it's me", "Tue, 05 Mar 2024 22:10:00 +0000"
    message["Message-ID"] = "<car-photo@example.com>"
    message.set_content("I was outside again. See attached.")
    message.add_attachment(photo.read_bytes(), maintype="image", subtype="jpeg", filename="car.jpg")
    message.add_attachment(shot.read_bytes(), maintype="image", subtype="png", filename="image0.png")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "message.eml").write_bytes(message.as_bytes())

    summary = ingest.json("run", "--source", "eml", tmp_path / "in", "--json")
    assert (summary["failed"], summary["unparsed"]) == (0, 0)
    records = {r["original"]["filename"]: r for r in ingest.json("list", "--json")}
    email = records["message.eml"]
    car, screenshot = records["car.jpg"], records["image0.png"]
    assert car["source"]["parser"] == screenshot["source"]["parser"] == "image 1"
    assert car["parent"] is not None and car["parent"] == screenshot["parent"]
    assert ingest.json("show", car["parent"], "--json")["original"]["filename"] == "message.eml"
    assert (car["kind"], car["occurred_at"], car["occurred_at_source"]) == \
        ("image", "2024-03-05T07:30:00+00:00", "exif:DateTimeOriginal")
    assert car["metadata"]["gps"] == {"latitude": 51.5, "longitude": -0.125} and car["metadata"]["found_as"] == "attachment"
    # no time of its own: it happened no later than the email that carried it
    assert (screenshot["occurred_at"], screenshot["occurred_at_source"]) == (email["occurred_at"],
                                                                             "parent:header:Date")
    assert "gym" in screenshot["text"]


# --- process-wide state -----------------------------------------------------------------------
STATE_PROBE = r"""
import json, logging, os, sys, warnings
from pathlib import Path

def state():
    loggers = [logging.getLogger()] + [logger for logger in logging.Logger.manager.loggerDict.values()
                                       if isinstance(logger, logging.Logger)]
    return {"environ": dict(os.environ), "filters": [repr(f) for f in warnings.filters],
            "loggers": sorted((logger.name, repr(logger.handlers), logger.propagate) for logger in loggers
                              if logger.handlers or not logger.propagate)}

try:    # numpy (here when the test extra's case-utils brings pandas) adds its own filters on first import,
    import numpy    # and pytesseract imports it when present: that is numpy's doing, not ingest's
except ImportError:
    pass
before = state()
import adapters.image.parser
from PIL import Image
imported = state()
heif_at_import = "HEIF" in Image.OPEN

from adapters.files import FilesSource
from ingest.case import Case
from ingest.pipeline import run
case = Case.init(Path(sys.argv[1]) / "case", name="t", timezone="Europe/London", region="GB", operator="t")
summary = run(case, FilesSource([Path(sys.argv[1]) / "in"]), adapters.image.parser.ImageParser())
case.close()
used = state()
print(json.dumps({"imported": imported == before, "used": used == before, "heif_at_import": heif_at_import,
                  "heif_when_used": "HEIF" in Image.OPEN, "records": summary.records}))
"""


def test_importing_or_using_the_image_parser_leaves_the_process_as_it_was(tmp_path):
    """No environment variable, warnings filter or log handler is left changed, by the import or by a
    parse with damaged EXIF (which makes both exifread log and Pillow warn)."""
    (tmp_path / "in").mkdir()
    corrupt_exif_jpeg(tmp_path / "in" / "IMG_2001.jpg")
    env = {key: value for key, value in os.environ.items() if key != "OMP_THREAD_LIMIT"}
    done = subprocess.run([sys.executable, "-c", STATE_PROBE, str(tmp_path)], capture_output=True, text=True,
                          env=env, cwd=Path(__file__).resolve().parent.parent, check=True)
    assert json.loads(done.stdout.splitlines()[-1]) == {"imported": True, "used": True, "heif_at_import": False,
                                                       "heif_when_used": True, "records": 1}


def _stand_in_tesseract(tmp_path: Path, body: str) -> str:
    """A script in tesseract's place that shows what it was handed (command line, environment)."""
    script = tmp_path / "tesseract"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(script)


def test_tesseract_is_run_single_threaded_through_its_own_environment(tmp_path, monkeypatch):
    import pytesseract

    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", _stand_in_tesseract(
        tmp_path, 'printf "OMP_THREAD_LIMIT=%s" "$OMP_THREAD_LIMIT" > "$2.txt"\n'
                  'base="$2"; shift 2; printf "%s " "$@" > "$base.tsv"\n'))
    text, tsv = image_ocr.ocr(Image.new("L", (8, 8)))
    assert (text, tsv) == (b"OMP_THREAD_LIMIT=1", b"-l eng -c tessedit_create_tsv=1 txt ")
    assert "OMP_THREAD_LIMIT" not in os.environ


def test_what_tesseract_says_when_it_fails_is_the_warning(tmp_path, monkeypatch):
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", _stand_in_tesseract(
        tmp_path, 'echo "Error opening data file eng.traineddata" >&2\nexit 1\n'))
    with pytest.raises(image_ocr.OcrFailed, match="^Error opening data file eng.traineddata$"):
        image_ocr.ocr(Image.new("L", (8, 8)))
