"""`ingest run --source imap` against a real Dovecot on 127.0.0.1, TLS with a self-signed certificate."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time

import pytest

from adapters.email import EmailParser
from adapters.imap import PREFETCH_BATCHES, ImapSource
from email_helpers import message
from imap_server import Dovecot
from ingest import pipeline
from ingest.model.errors import SourceError, UsageError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server():
    with Dovecot() as running:
        yield running


@pytest.fixture
def user(server, request):
    """A fresh account per test, so tests never see each other's mail."""
    return server.add_user(request.node.name.replace("[", "-").replace("]", "")[:40])


def run_args(server, user, *extra, port=None, ca=True):
    args = ["run", "--source", "imap", "--host", "127.0.0.1", "--port", port or server.port, "--user", user.name,
            "--password-env", "IMAP_TEST_PASSWORD", *extra, "--json"]
    return args + (["--ca-file", server.cert] if ca else [])


def run(ingest, server, user, *extra, **kwargs):
    result = ingest(*run_args(server, user, *extra, **kwargs), env={"IMAP_TEST_PASSWORD": user.password})
    return result, (json.loads(result.stdout) if result.stdout.strip().startswith("{") else None)


def server_view(server, user, folder="INBOX"):
    """What the server holds, read over a second connection: {uid: (sha256, flags without \\Recent)}."""
    client = server.connect(user)
    try:
        client.select_folder(folder, readonly=True)
        fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[]", "FLAGS"])
        return {uid: (hashlib.sha256(item[b"BODY[]"]).hexdigest(),
                      sorted(flag for flag in item[b"FLAGS"] if flag != b"\\Recent"))
                for uid, item in fetched.items()}
    finally:
        client.logout()


def emails(ingest):
    return [r for r in ingest.json("list", "--json") if r["kind"] == "email"]


def test_each_message_is_kept_byte_exact_and_no_flag_changes(server, user, ingest):
    mails = [message(i) for i in range(24)]
    server.add_messages(user, mails, flags=["S", "", "FS", "RS", "", "D"] * 4)
    before = server_view(server, user)

    result, summary = run(ingest, server, user)

    assert result.exit_code == 0, result.output
    attachments = sum(1 for i in range(24) if i % 4 == 0)
    assert (summary["new"], summary["failed"], summary["unparsed"]) == (24 + attachments, 0, 0)
    assert summary["expected"] == {"INBOX": 24} and summary["acquired"] == {"INBOX": 24}
    after = server_view(server, user)
    assert after == before                                   # not one flag changed (\Seen included)
    kept = {int(r["source"]["key"].rsplit("UID=", 1)[1]): r for r in emails(ingest)}
    assert sorted(kept) == sorted(before)
    for uid, record in kept.items():
        assert record["original"]["sha256"] == before[uid][0]
        assert record["source"]["key"].startswith(f"imap://{user.name}@127.0.0.1:{server.port}/INBOX;UIDVALIDITY=")
        assert record["source"]["adapter"] == "imap" and record["source"]["parser"] == "email 1"


def test_messages_the_server_sends_are_typed_without_libmagic(server, user, ingest, monkeypatch):
    """IMAP sends messages: when the bytes look like mail, libmagic (~0.7 ms each) is not asked."""
    import ingest.media as media
    asked = []
    real = media._detector.from_buffer
    monkeypatch.setattr(media._detector, "from_buffer", lambda head: asked.append(head) or real(head))
    server.add_messages(user, [message(i) for i in (1, 2, 3)] + [b"not mail at all\r\n"])
    result, summary = run(ingest, server, user)
    assert result.exit_code == 0, result.output
    assert sorted(record["original"]["media_type"] for record in ingest.json("list", "--json")) == \
        ["message/rfc822"] * 3 + ["text/plain"]
    assert asked == [b"not mail at all\r\n"]


def test_records_carry_date_people_trace_headers_and_attachments(server, user, ingest):
    server.add_messages(user, [message(0), message(6)], flags=["S", ""], mtime=1709300000)
    run(ingest, server, user)
    records = ingest.json("list", "--json")
    first = next(r for r in records if r["kind"] == "email" and r["subject"].endswith("#0"))
    assert first["occurred_at"] == "2024-03-01T21:41:05+00:00"
    assert first["occurred_at_source"] == "header:Date"
    assert first["occurred_at_raw"] == "Fri, 01 Mar 2024 21:41:05 +0000"
    assert first["from"] == ["dan.reeve@example.com"] and first["to"] == ["sam.patel@example.org", "friend@example.com"]
    meta = first["metadata"]
    assert meta["message_id"] == "<0.7@mail.example.net>"
    assert meta["auth"] == {"spf": "fail", "dkim": "fail", "dmarc": "fail"}
    assert [hop["by"] for hop in meta["received"]] == ["mail.example.org", "mx0.example.net"]
    assert meta["imap"]["flags"] == ["\\Seen", "\\Recent"] or meta["imap"]["flags"] == ["\\Seen"]
    assert meta["imap"]["internaldate"] == "2024-03-01T13:33:20+00:00"
    photo = next(r for r in records if r["original"]["filename"] == "photo-0.jpg")
    assert photo["kind"] == "attachment" and photo["parent"] == first["id"]
    assert photo["occurred_at"] == "2024-03-01T21:41:05+00:00"
    assert photo["occurred_at_source"] == "parent:header:Date"
    sixth = next(r for r in records if r["kind"] == "email" and r["subject"].endswith("#6"))
    assert sixth["metadata"]["auth"] == {"spf": "pass", "dkim": "pass", "dmarc": "pass"}


def test_missing_date_falls_back_to_internaldate(server, user, ingest):
    server.add_messages(user, [b"From: dan.reeve@example.com\r\nSubject: no date\r\n\r\nI'm outside.\r\n"],
                        mtime=1709329265)
    run(ingest, server, user)
    [record] = emails(ingest)
    assert record["occurred_at"] == "2024-03-01T21:41:05+00:00"
    assert record["occurred_at_source"] == "imap:INTERNALDATE"
    assert record["metadata"]["problems"] == ["no Date header"]


def test_rerun_acquires_nothing_and_one_appended_message_exactly_one(server, user, ingest):
    server.add_messages(user, [message(i) for i in range(1, 4)])
    first = run(ingest, server, user)[1]
    again = run(ingest, server, user)[1]
    assert (first["new"], again["new"], again["already_held"], again["records"]) == (3, 0, 3, 0)
    client = server.connect(user)
    client.append("INBOX", message(99, attachment_bytes=0))
    client.logout()
    third = run(ingest, server, user)[1]
    assert (third["new"], third["records"], third["expected"], third["acquired"]) == \
        (1, 1, {"INBOX": 4}, {"INBOX": 4})
    assert run(ingest, server, user)[1]["new"] == 0


def test_the_same_message_in_two_folders_is_one_object_with_two_keys(server, user, ingest):
    same = message(3)
    server.add_messages(user, [same])
    server.add_messages(user, [same], folder="Harassment")
    result, summary = run(ingest, server, user, "--all-folders")
    assert result.exit_code == 0
    assert (summary["new"], summary["already_held"]) == (1, 1)         # 2 given: one object, two keys
    assert summary["expected"] == {"INBOX": 1, "Harassment": 1} == summary["acquired"]
    with sqlite3.connect(ingest.case_dir / "index.sqlite") as db:
        keys = db.execute("SELECT source_key, blake3 FROM originals WHERE depth=0 ORDER BY source_key").fetchall()
    assert len({blake for _key, blake in keys}) == 1
    assert [key.split("/")[3].split(";")[0] for key, _ in keys] == ["Harassment", "INBOX"]


def test_folder_since_and_from_select_server_side(server, user, ingest):
    server.add_messages(user, [message(0), message(1)], mtime=1600000000)            # 2020
    server.add_messages(user, [message(3), message(6)], mtime=1709329265)            # 2024
    server.add_messages(user, [message(9)], folder="Work", mtime=1709329265)
    result, summary = run(ingest, server, user, "--mail-since", "2024-01-01", "--from", "claire.moss@example.org")
    assert summary["expected"] == {"INBOX": 1} and summary["new"] == 1
    assert result.stderr == ""
    [record] = emails(ingest)
    assert record["from"] == ["claire.moss@example.org"] and record["subject"].endswith("#6")
    _result, summary = run(ingest, server, user, "--folder", "Work")
    assert summary["expected"] == {"Work": 1} and summary["new"] == 1


def test_the_old_since_still_selects_and_says_the_new_name(server, user, ingest):
    server.add_messages(user, [message(0)], mtime=1600000000)                         # 2020
    server.add_messages(user, [message(3)], mtime=1709329265)                         # 2024
    result, summary = run(ingest, server, user, "--since", "2024-01-01")
    assert result.exit_code == 0 and summary["expected"] == {"INBOX": 1}
    assert result.stderr == ("ingest: --since is now called --mail-since for the imap source; "
                             "the old name still works for now.\n")


def test_a_folder_that_does_not_exist_is_named_with_the_folders_that_do(server, user, ingest):
    server.add_messages(user, [message(1)])
    server.add_messages(user, [message(2)], folder="Work")
    result, summary = run(ingest, server, user, "--folder", "INBOX", "--folder", "Nope")
    assert result.exit_code == 1
    assert summary["new"] == 1 and summary["failed"] == 1
    assert summary["problems"] == ["Nope: there is no folder by that name on 127.0.0.1. Its folders are: INBOX, Work"]


def test_the_password_is_asked_for_only_after_the_certificate_holds(server, user, case):
    asked = []

    def ask(prompt):
        asked.append(prompt)
        return user.password

    def source(**extra):
        options = ImapSource.check_options({"host": "127.0.0.1", "port": server.port, "user": user.name, **extra},
                                           ask)
        return ImapSource([], options)

    from imap_server import free_port
    with pytest.raises(SourceError, match="connection refused"):
        source(port=free_port()).connect()
    with pytest.raises(SourceError, match="could not be trusted"):
        source().connect()
    assert asked == []                                   # nobody typed a secret for a server not reached
    server.add_messages(user, [message(1)])
    summary = pipeline.run(case, source(ca_file=server.cert), EmailParser())
    assert asked == [f"Password for {user.name} at 127.0.0.1"] and summary.new == 1


def fetched_by(read: int, batch: int = 10) -> int:
    """At most how many UIDs are fetched once the pipeline has read `read` messages: it stores up
    to STORE_AHEAD and holds WINDOW more, and the fetching thread holds the batch being handed
    over, the batches waiting and the one it fetches."""
    handed = read + pipeline.WINDOW + pipeline.STORE_AHEAD
    return ((handed - 1) // batch + 1 + PREFETCH_BATCHES + 1) * batch


def test_a_message_the_server_does_not_return_is_named_and_fails_the_run(server, user, case):
    lost = fetched_by(1) + 6                # not fetched yet when the first message is read
    count = lost + 14
    server.add_messages(user, [message(i, attachment_bytes=0) for i in range(count)])
    files = sorted((user.maildir / "cur").iterdir())
    source = ImapSource([], {"host": "127.0.0.1", "port": server.port, "user": user.name,
                             "password": user.password, "ca_file": server.cert, "fetch_batch": 10})

    class DeleteOneLater(pipeline.Progress):
        count = 0

        def advance(self, label):
            self.count += 1
            if self.count == 1:
                files[lost - 1].unlink()     # the server listed this UID, then loses it before its FETCH

    summary = pipeline.run(case, source, EmailParser(), progress=DeleteOneLater())
    assert summary.failed == 1
    assert summary.problems == [f"INBOX UID {lost}: the server did not return this message (it may have been "
                                "deleted while ingest was running)"]
    assert summary.expected == {"INBOX": count} and summary.acquired == {"INBOX": count - 1}
    assert summary.shortfalls() == {"INBOX": (count, count - 1)}


def test_a_run_stopped_mid_folder_ends_its_fetching_thread_and_the_next_run_takes_the_rest(server, user, case):
    server.add_messages(user, [message(i, attachment_bytes=0) for i in range(50)])
    options = {"host": "127.0.0.1", "port": server.port, "user": user.name, "password": user.password,
               "ca_file": server.cert, "fetch_batch": 10}

    class StopAtSeven(pipeline.Progress):
        count = 0

        def advance(self, label):
            self.count += 1
            if self.count == 7:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pipeline.run(case, ImapSource([], options), EmailParser(), progress=StopAtSeven())
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("imap fetch")]
    kept = case.index.db.execute("SELECT count(*) FROM originals").fetchone()[0]
    assert 7 <= kept < 50
    summary = pipeline.run(case, ImapSource([], options), EmailParser())
    assert (summary.new, summary.failed, summary.duplicates) == (50 - kept, 0, 0)
    assert case.index.db.execute("SELECT count(DISTINCT source_key) FROM originals").fetchone()[0] == 50


def test_a_server_restarted_mid_run_is_survived_without_loss_or_duplicates(server, user, case):
    count = fetched_by(25) + 30             # some still to fetch when the server stops
    server.add_messages(user, [message(i, attachment_bytes=0) for i in range(count)])
    expected = server_view(server, user)
    source = ImapSource([], {"host": "127.0.0.1", "port": server.port, "user": user.name,
                             "password": user.password, "ca_file": server.cert, "fetch_batch": 10})

    back = threading.Timer(1.0, server.start)             # the server is back a second after it stopped

    class RestartServer(pipeline.Progress):
        count = 0

        def advance(self, label):
            self.count += 1
            if self.count == 25:
                server.stop()                                     # every connection dies now
                back.start()

    summary = pipeline.run(case, source, EmailParser(), progress=RestartServer())
    back.join()
    assert (summary.new, summary.records, summary.failed, summary.duplicates) == (count, count, 0, 0)
    assert any("dropped 1 time(s); ingest reconnected" in note for note in summary.notes)
    rows = case.index.db.execute("SELECT source_key, blake3 FROM originals").fetchall()
    assert len(rows) == count == len({key for key, _ in rows})
    held = {int(key.rsplit("UID=", 1)[1]): case.index.object(blake)["sha256"] for key, blake in rows}
    assert held == {uid: sha for uid, (sha, _flags) in expected.items()}


def test_wrong_password_is_one_clear_line_and_never_shows_the_password(server, user, ingest):
    secret = "not-the-Pa55word-" + os.urandom(3).hex()
    result = ingest(*run_args(server, user), env={"IMAP_TEST_PASSWORD": secret})
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == (f"ingest: The mail server 127.0.0.1 refused the user name or password for {user.name}. "
                             "Check them and try again (Gmail, Outlook and iCloud need an app password).\n")
    assert secret not in result.output


def test_the_password_is_nowhere_in_the_case(server, user, ingest):
    server.add_messages(user, [message(2)])
    result, summary = run(ingest, server, user)
    assert summary["new"] == 1
    needle = user.password.encode()
    for folder, _dirs, files in os.walk(ingest.case_dir):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                assert needle not in handle.read(), name
    assert needle not in result.output.encode()


def test_custody_names_the_server_and_its_certificate_fingerprint(server, user, ingest):
    server.add_messages(user, [message(1)])
    run(ingest, server, user)
    lines = [json.loads(line) for line in (ingest.case_dir / "custody.jsonl").read_text().splitlines()]
    acquired = [line for line in lines if line["action"] == "acquire"]
    assert acquired[0]["detail"]["peer"] == {"host": "127.0.0.1", "port": server.port, "protocol": "imaps",
                                             "tls_cert_sha256": server.cert_sha256()}


def test_starttls_and_plain_loopback_work_and_say_so(server, user, ingest):
    server.add_messages(user, [message(1)])
    result, summary = run(ingest, server, user, "--security", "starttls", port=server.plain_port)
    assert result.exit_code == 0 and summary["new"] == 1
    client = server.connect(user)
    client.append("INBOX", message(2))
    client.logout()
    result, summary = run(ingest, server, user, "--security", "none", port=server.plain_port, ca=False)
    assert result.exit_code == 0 and summary["new"] == 1
    peers = [json.loads(line)["detail"].get("peer") for line in
             (ingest.case_dir / "custody.jsonl").read_text().splitlines()]
    protocols = [(peer["protocol"], peer["tls_cert_sha256"]) for peer in peers if peer]
    assert protocols == [("imap+starttls", server.cert_sha256()), ("imap", None)]


def test_an_untrusted_certificate_stops_before_anything_is_sent(server, user, ingest):
    result, summary = run(ingest, server, user, ca=False)
    assert result.exit_code == 3 and summary is None
    assert result.stderr.startswith(f"ingest: The certificate of 127.0.0.1:{server.port} could not be trusted "
                                    "(self-signed certificate); nothing was downloaded.")


def test_plain_text_to_a_remote_host_is_refused_before_connecting(ingest):
    result = ingest("run", "--source", "imap", "--host", "imap.example.com", "--user", "sam", "--security", "none",
                    "--password-env", "IMAP_TEST_PASSWORD", env={"IMAP_TEST_PASSWORD": "x"})
    assert result.exit_code == 2
    assert result.stderr == ("ingest: Refusing to send your password to imap.example.com without encryption. "
                             "Use --security ssl (the default) or starttls; 'none' is only for a server on this "
                             "machine.\n")


def test_nothing_listening_is_a_clear_error(ingest):
    from imap_server import free_port
    port = free_port()
    result = ingest("run", "--source", "imap", "--host", "127.0.0.1", "--port", port, "--user", "sam",
                    "--password-env", "IMAP_TEST_PASSWORD", env={"IMAP_TEST_PASSWORD": "x"})
    assert result.exit_code == 3
    assert result.stderr == (f"ingest: Could not connect to the mail server 127.0.0.1:{port} (connection refused). "
                             "Check --host, --port and --security, and that this machine is online.\n")


def test_bad_since_is_a_usage_error(ingest):
    with pytest.raises(UsageError, match="--mail-since '1st March' is not a date"):
        ImapSource([], {"host": "127.0.0.1", "user": "sam", "since": "1st March"})
    result = ingest("run", "--source", "imap", "--host", "127.0.0.1", "--user", "sam", "--mail-since", "1/3/24",
                    "--password-env", "IMAP_TEST_PASSWORD", env={"IMAP_TEST_PASSWORD": "x"})
    assert result.exit_code == 2
    assert result.stderr == ("ingest: --mail-since '1/3/24' is not a date. Write it as YYYY-MM-DD, "
                             "e.g. 2024-03-01.\n")


def test_the_password_help_prefers_the_variable_and_warns_of_shell_history(ingest):
    text = " ".join(ingest("run", "--help").stdout.split())
    assert ("Better than typing on a shared computer; set it with `read -rs VAR; export VAR`, because a line like "
            "VAR=secret stays in your shell history.") in text


def test_a_renumbered_folder_is_listed_again_and_recognised_by_hash(server, user, ingest):
    server.add_messages(user, [message(i) for i in (1, 2, 3)])
    first = run(ingest, server, user)[1]
    server.stop()
    for leftover in user.maildir.glob("dovecot*"):
        leftover.unlink()                                   # Dovecot forgets its UIDs: a new UIDVALIDITY
    time.sleep(1.1)                                         # UIDVALIDITY is a timestamp; make sure it moves
    server.start()
    result, again = run(ingest, server, user)
    assert result.exit_code == 0
    assert (first["new"], again["new"], again["already_held"], again["records"]) == (3, 0, 3, 0)
    assert any(note.startswith("The server has renumbered INBOX since the last run") for note in again["notes"])
