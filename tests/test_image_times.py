"""Issue 13, photos: a camera time without an offset placed by the photo's own GPS time (UTC), the
picture's times disagreeing, a date without a time, and GIFs read without a false EXIF warning.
Fixtures are made here with Pillow and exiftool (Debian's libimage-exiftool-perl)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed")


def picture(path: Path, *tags: str, heic: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if heic:
        import pillow_heif

        pillow_heif.register_heif_opener()
    Image.new("RGB", (64, 48), "blue").save(path)
    if tags:
        subprocess.run(["exiftool", "-q", "-overwrite_original", *tags, str(path)], check=True)
    return path


def read(ingest, *paths) -> tuple[dict, dict[str, dict]]:
    result = ingest("run", *paths, "--json")
    assert result.exit_code == 0, result.output
    records = {r["original"]["filename"]: r for r in ingest.json("list", "--json")}
    return {"stderr": result.stderr, **json.loads(result.stdout)}, records


@pytest.mark.parametrize("name, taken, gps_day, gps_time, expected, offset", [
    # an iPhone in Thailand (UTC+7): the case is in London, which would have put it 7 hours wrong
    ("thailand.heic", "2024:03:01 21:41:05", "2024:03:01", "14:41:03", "2024-03-01T21:41:05+07:00", "+0700"),
    # China (UTC+8), the GPS fix taken a few seconds before the shutter
    ("china.heic", "2024:03:02 08:00:00", "2024:03:02", "00:00:00", "2024-03-02T08:00:00+08:00", "+0800"),
    # across midnight UTC: Los Angeles (UTC-8) in the evening is the next day in UTC
    ("la.jpg", "2024:03:01 20:30:00", "2024:03:02", "04:29:58", "2024-03-01T20:30:00-08:00", "-0800"),
])
def test_a_camera_time_without_an_offset_is_placed_by_the_gps_time(ingest, tmp_path, name, taken, gps_day,
                                                                    gps_time, expected, offset):
    path = picture(tmp_path / name, f"-DateTimeOriginal={taken}", f"-GPSDateStamp={gps_day}",
                   f"-GPSTimeStamp={gps_time}", "-Make=Apple", "-Model=iPhone 15", heic=name.endswith(".heic"))
    _summary, records = read(ingest, path)
    record = records[name]
    assert (record["occurred_at"], record["occurred_at_source"], record["timezone_assumed"]) == (
        expected, "exif:DateTimeOriginal", False)
    assert record["metadata"]["timezone_from_gps"] == {"offset": offset, "gps_utc": f"{gps_day} {gps_time}"}


def test_without_gps_the_camera_time_is_read_in_the_case_zone_and_said_assumed(ingest, tmp_path):
    path = picture(tmp_path / "home.jpg", "-DateTimeOriginal=2024:03:01 21:41:05")
    _summary, records = read(ingest, path)
    record = records["home.jpg"]
    assert (record["occurred_at"], record["timezone_assumed"]) == ("2024-03-01T21:41:05+00:00", True)
    assert "timezone_from_gps" not in record["metadata"]


def test_exif_xmp_and_iptc_disagreeing_are_said_and_exif_wins(ingest, tmp_path):
    path = picture(tmp_path / "edited.jpg", "-DateTimeOriginal=2024:03:01 21:41:05", "-OffsetTimeOriginal=+00:00",
                   "-XMP-exif:DateTimeOriginal=2024-03-05T10:00:00+00:00", "-IPTC:DateCreated=2024:03:01",
                   "-IPTC:TimeCreated=21:41:30+00:00")
    summary, records = read(ingest, path)
    record = records["edited.jpg"]
    assert (record["occurred_at"], record["occurred_at_source"]) == ("2024-03-01T21:41:05+00:00",
                                                                    "exif:DateTimeOriginal")
    # IPTC is 25 seconds off (within a minute: the same moment); XMP is four days off
    assert record["metadata"]["other_times"] == [
        {"source": "xmp:DateTimeOriginal", "raw": "2024-03-05T10:00:00+00:00", "value": "2024-03-05T10:00:00+00:00"}]
    assert ("its own times disagree: exif:DateTimeOriginal says '2024:03:01 21:41:05 +00:00', xmp:DateTimeOriginal "
            "says '2024-03-05T10:00:00+00:00'. exif:DateTimeOriginal is used (the camera's EXIF is trusted before "
            "XMP, and XMP before IPTC); the others are kept in the record's metadata (other_times).") \
        in summary["stderr"]


def test_an_iptc_date_without_a_time_is_a_date(ingest, tmp_path):
    path = picture(tmp_path / "scan.jpg", "-IPTC:DateCreated=2024:03:01")
    _summary, records = read(ingest, path)
    record = records["scan.jpg"]
    assert (record["occurred_at"], record["occurred_at_source"], record["occurred_at_raw"]) == (
        "2024-03-01T00:00:00+00:00", "iptc:DateCreated", "20240301")
    assert (record["metadata"]["date_only"], record["metadata"]["occurred_on"]) == (True, "2024-03-01")


def test_a_gif_gets_no_false_exif_warning(ingest, tmp_path):
    path = tmp_path / "reaction.gif"
    Image.new("P", (32, 32)).save(path)
    summary, records = read(ingest, path)
    assert summary["warnings"] == 0 and "EXIF" not in summary["stderr"]
    assert records["reaction.gif"]["metadata"]["format"] == "GIF"
