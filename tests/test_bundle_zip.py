"""`ingest verify BUNDLE.zip` on hostile zips: one plain problem each, exit 1, nothing unpacked."""

import shutil
import zipfile

from click.testing import CliRunner

from ingest.cli import cli

CLAIMED = 0xFFFF_FFF0     # what each member says it unpacks to (just under 4 GiB, no zip64 needed)


def verify(path):
    return CliRunner().invoke(cli, ["verify", str(path)], catch_exceptions=False)


def test_a_zip_claiming_more_than_the_disk_holds_is_not_unpacked(tmp_path):
    bomb = tmp_path / "bundle.zip"
    members = shutil.disk_usage(tmp_path).free // CLAIMED + 2
    with zipfile.ZipFile(bomb, "w") as archive:
        archive.writestr("bundle/bagit.txt", "BagIt-Version: 1.0\n")
        for number in range(members):
            archive.writestr(f"bundle/data/part{number}", b"0")
            archive.getinfo(f"bundle/data/part{number}").file_size = CLAIMED   # the central directory lies
    result = verify(bomb)
    assert result.exit_code == 1
    assert f"says it unpacks to {members * CLAIMED + 19} bytes" in result.output
    assert "not unpacked" in result.output


def test_a_damaged_member_is_a_problem_not_a_traceback(tmp_path):
    damaged = tmp_path / "bundle.zip"
    with zipfile.ZipFile(damaged, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bundle/bagit.txt", "BagIt-Version: 1.0\n" * 50)
    data = bytearray(damaged.read_bytes())
    data[40:48] = b"\xff" * 8            # inside the compressed bytes of the only member
    damaged.write_bytes(bytes(data))
    result = verify(damaged)
    assert result.exit_code == 1
    assert "zip: is damaged and cannot be unpacked" in result.output
