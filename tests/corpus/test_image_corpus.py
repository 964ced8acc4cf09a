"""Every real photo and screenshot in ../shared/corpus/images is kept and dated like exiftool reads it."""

from __future__ import annotations

import hashlib
import json

import pytest

# From `exiftool -T -filename -DateTimeOriginal -OffsetTimeOriginal -GPSLatitude -GPSLongitude -n` and, for
# files without EXIF times, `exiftool -G1 -a -time:all`. The case zone is Europe/London.
EXIFTOOL = {   # file: (what exiftool prints, expected occurred_at, occurred_at_source, timezone_assumed)
    # iPhone HEIC and Pixel JPEG with OffsetTimeOriginal
    "exifsamples_heic_IMG_5195.HEIC": ("2021:04:11 15:47:53 -05:00", "2021-04-11T15:47:53-05:00",
                                       "exif:DateTimeOriginal", False),
    "exifsamples_heic_mobile_iphone_13_pro_max.HEIC": ("2022:02:16 12:55:41 +01:00", "2022-02-16T12:55:41+01:00",
                                                       "exif:DateTimeOriginal", False),
    "exiftool_Google.jpg": ("2023:10:06 22:53:51 +02:00", "2023-10-06T22:53:51+02:00", "exif:DateTimeOriginal", False),
    # no offset: read in the case zone (BST in September, GMT in December)
    # no offset in EXIF, but GPS says 17:17:58 UTC: the offset (+01:00) comes from the photo, not the case
    "exiftool_Apple.jpg": ("2016:09:28 18:18:05", "2016-09-28T18:18:05+01:00", "exif:DateTimeOriginal", False),
    "exiftool_Olympus.jpg": ("1999:12:06 16:38:40", "1999-12-06T16:38:40+00:00", "exif:DateTimeOriginal", True),
    # [XMP-exif] DateTimeOriginal; the EXIF IFD itself is damaged
    "exifsamples_jpg_tests_30-type_error.jpg": ("2013:07:05 03:18:27Z", "2013-07-05T03:18:27+00:00",
                                                "xmp:DateTimeOriginal", False),
    # no EXIF capture time; [XMP-xmp] CreateDate
    "exifsamples_jpg_xmp_no_exif.jpg": ("2013:09:23 10:09:46+02:00", "2013-09-23T10:09:46+02:00", "xmp:CreateDate",
                                        False),
    # Galaxy S7: no DateTimeOriginal, only [IFD0] ModifyDate
    "exifsamples_jpg_tests_67-0_length_string.jpg": ("2016:09:12 10:05:31", "2016-09-12T10:05:31+01:00",
                                                     "exif:DateTime", True),
}
GPS = {
    "exiftool_Apple.jpg": (53.3828472222222, -1.45667777777778),
    "exifsamples_heic_IMG_5195.HEIC": (39.0513444444444, -94.2887722222222),
    "exiftool_GoPro.jpg": (40.6584191999722, -73.9933542999722),
    "exiftool_InfiRay.jpg": None,      # GPS tags present but all 0/0
}


@pytest.fixture(scope="module")
def kept(corpus, tmp_path_factory):
    from click.testing import CliRunner

    from ingest.case import Case
    from ingest.cli import cli

    root = tmp_path_factory.mktemp("images") / "case"
    Case.init(root, timezone="Europe/London", region="GB", operator="Tester").close()
    runner = CliRunner()
    result = runner.invoke(cli, ["--case", str(root), "run", "--source", "screenshots", str(corpus / "images"),
                                 "--json"], catch_exceptions=False)
    listed = runner.invoke(cli, ["--case", str(root), "list", "--json"], catch_exceptions=False)
    return root, result, {r["original"]["filename"]: r for r in json.loads(listed.stdout)}


def test_every_image_is_kept_byte_exact_without_a_traceback(corpus, kept):
    root, result, records = kept
    files = sorted(path for path in (corpus / "images").iterdir())
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert sorted(records) == [path.name for path in files]
    for path in files:
        record = records[path.name]
        assert record["source"]["parser"] == "image 1"
        assert record["original"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        blake3_hex = record["original"]["blake3"]
        assert (root / "objects" / blake3_hex[:2] / blake3_hex).read_bytes() == path.read_bytes()


@pytest.mark.parametrize("name", sorted(EXIFTOOL))
def test_occurred_at_matches_exiftool(kept, name):
    _root, _result, records = kept
    _exiftool, expected, source, assumed = EXIFTOOL[name]
    record = records[name]
    assert (record["occurred_at"], record["occurred_at_source"], record["timezone_assumed"]) == \
        (expected, source, assumed)


@pytest.mark.parametrize("name", sorted(GPS))
def test_gps_matches_exiftool(kept, name):
    _root, _result, records = kept
    position = records[name]["metadata"].get("gps")
    if GPS[name] is None:
        assert position is None
    else:
        assert (position["latitude"], position["longitude"]) == pytest.approx(GPS[name], abs=1e-6)


def test_android_screenshots_are_screenshots_with_their_text(kept):
    _root, _result, records = kept
    for name in ("smsie_android_screenshot_01.png", "smsie_android_screenshot_07.png"):
        record = records[name]
        assert record["kind"] == "screenshot" and record["occurred_at_source"] == "file:mtime"
        assert "SMS Import / Export" in record["text"]
    assert records["exiftool_Canon.jpg"]["kind"] == "image"


def test_damaged_files_are_kept_with_a_plain_warning(kept):
    root, result, records = kept
    assert "exiftool_QuickTime.heic: the picture could not be fully decoded" in result.output
    assert records["exiftool_QuickTime.heic"]["derived"] == []
    assert "exifsamples_jpg_tests_30-type_error.jpg: its EXIF data looks damaged (Possibly corrupted IFD: EXIF)" \
        in result.output
