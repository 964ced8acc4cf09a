"""RFC 3161 time-stamps from a real local authority (openssl), checked with `openssl ts -verify`."""

from __future__ import annotations

import base64
import json
import socket
import subprocess

import pytest

from store.custody import line_hash
from ingest.features.seal import statement

from tsa_server import make_authority, serve


@pytest.fixture(scope="module")
def authority(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tsa")
    return folder, make_authority(folder)


@pytest.fixture
def letter_case(ingest, tmp_path):
    letter = tmp_path / "letter.txt"
    letter.write_text("I will be waiting outside.\n")
    ingest.json("run", "--source", "files", letter, "--json")
    return ingest


def ts_verify(*args, cwd):
    return subprocess.run(["openssl", "ts", "-verify", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_export_with_a_tsa_keeps_a_token_openssl_verifies(letter_case, authority, tmp_path):
    folder, ca = authority
    out = tmp_path / "bundle"
    with serve(folder) as url:
        result = letter_case("export", "--out", out, "--tsa", url)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    stamped = result.stdout.splitlines()[-1]
    assert stamped.startswith(f"Time-stamped by {url} at 20") and stamped.endswith("Z.")
    checked = ts_verify("-in", "SHA256SUMS.tsr", "-data", "SHA256SUMS", "-CAfile", ca, cwd=out)
    assert checked.returncode == 0 and checked.stdout.strip() == "Verification: OK", checked.stderr
    readme = (out / "README.txt").read_text()
    assert "openssl ts -verify -in SHA256SUMS.tsr -data SHA256SUMS -CAfile tsa-ca.pem" in readme
    verified = letter_case("verify", out)
    assert verified.exit_code == 0, verified.output
    assert "note: SHA256SUMS was time-stamped at " in verified.stdout
    # the token is for this list and no other
    (out / "SHA256SUMS").write_text((out / "SHA256SUMS").read_text() + "\n")
    assert ts_verify("-in", "SHA256SUMS.tsr", "-data", "SHA256SUMS", "-CAfile", ca, cwd=out).returncode == 1
    assert "PROBLEM SHA256SUMS.tsr: is a time-stamp for something other than this SHA256SUMS" in \
        letter_case("verify", out).stdout
    export = json.loads((letter_case.case_dir / "custody.jsonl").read_text().splitlines()[-1])
    assert export["detail"]["tsa"] == url and export["detail"]["tsa_time"]


def test_seal_with_a_tsa(letter_case, authority, tmp_path):
    folder, ca = authority
    lines = (letter_case.case_dir / "custody.jsonl").read_bytes().splitlines()
    with serve(folder) as url:
        made = letter_case.json("seal", "--tsa", url, "--json")
    assert made["line"] == len(lines) and made["tsa_time"].endswith("Z")
    entry = json.loads((letter_case.case_dir / "custody.jsonl").read_text().splitlines()[-1])
    token = tmp_path / "seal.tsr"
    token.write_bytes(base64.urlsafe_b64decode(entry["detail"]["tsa_response"]))
    sealed = tmp_path / "sealed.txt"
    sealed.write_bytes(statement(len(lines), line_hash(lines[-1])))
    checked = ts_verify("-in", token, "-data", sealed, "-CAfile", ca, cwd=tmp_path)
    assert checked.returncode == 0 and checked.stdout.strip() == "Verification: OK", checked.stderr


def test_an_unreachable_tsa_is_one_line_and_the_bundle_is_still_made(letter_case, tmp_path):
    url = f"http://127.0.0.1:{unused_port()}/tsa"
    out = tmp_path / "bundle"
    result = letter_case("export", "--out", out, "--tsa", url)
    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ingest: The time-stamping authority at {url} could not be "
                                                   "reached (")
    assert lines[0].endswith("). The bundle was made without a time-stamp.")
    assert result.stdout.splitlines()[-1] == "Not time-stamped: the time-stamping authority gave no token."
    assert not (out / "SHA256SUMS.tsr").exists()
    assert letter_case("verify", out).exit_code == 0
    export = json.loads((letter_case.case_dir / "custody.jsonl").read_text().splitlines()[-1])
    assert export["detail"]["tsa_problem"].startswith("The time-stamping authority")


def test_a_tsa_answering_garbage_is_one_line(letter_case, authority, tmp_path):
    folder, _ca = authority
    with serve(folder, garbage=True) as url:
        result = letter_case("export", "--out", tmp_path / "bundle.zip", "--tsa", url)
        seal = letter_case("seal", "--tsa", url, "--json")
    assert result.exit_code == 0
    assert result.stderr == (f"ingest: The time-stamping authority at {url} did not answer with a time-stamp token. "
                             "The bundle was made without a time-stamp.\n")
    assert (tmp_path / "bundle.zip").exists()
    assert seal.exit_code == 0
    assert seal.stderr == (f"ingest: The time-stamping authority at {url} did not answer with a time-stamp token. "
                           "The seal was made without a time-stamp.\n")
    assert json.loads(seal.stdout)["tsa_problem"].startswith("The time-stamping authority")
