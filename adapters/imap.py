"""The `imap` source: a mailbox on a mail server, kept exactly as the server holds it.

Read-only by construction: every folder is opened with EXAMINE and every message is
fetched with BODY.PEEK[], so no flag on the server changes (not even \\Seen).
Each message's raw RFC 822 bytes are the original; its key is
`imap://user@host:port/FOLDER;UIDVALIDITY=v;UID=n`.

Incremental: per account and folder the case remembers UIDVALIDITY and the highest
UID below which everything is held; a re-run only looks at newer UIDs (and asks
the index about any it is unsure of). A changed UIDVALIDITY means the server
renumbered the folder: it is listed again and the store's hashes recognise what
is already kept. A dropped connection is re-opened and the run carries on where
it was; a message the server does not return is named and makes the run fail.

Fetching runs on a second thread, in batches of many UIDs a FETCH, at most
PREFETCH_BATCHES ahead of the main thread that stores and parses: the network, the
server and TLS work while the main thread does, and memory holds a few batches, never
the folder. Only the fetching thread touches the connection while it runs; the case
(index, state, custody) is touched only by the main thread.
"""

from __future__ import annotations

import hashlib
import imaplib
import io
import ipaddress
import json
import os
import queue
import socket
import ssl
import threading
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Iterator
from urllib.parse import quote

from ingest.kit.adapter import AskSecret, Option, Source
from ingest.kit.context import Context
from ingest.model.errors import AuthError, SourceError, UsageError
from ingest.model.records import Original
from ingest.kit.registry import register

if TYPE_CHECKING:
    from imapclient import IMAPClient

# imapclient itself is imported where a connection is made: its import was ~12% of every command's
# start, and only an IMAP run needs it. Its base error is imaplib's own.
IMAPClientError = imaplib.IMAP4.error

FETCH_ITEMS = [b"BODY.PEEK[]", b"INTERNALDATE", b"FLAGS", b"RFC822.SIZE"]
FETCH_BATCH = 200                   # UIDs per FETCH: FACTS.md measured 200-500 as the plateau over TLS
FETCH_BYTES = 16 * 1024 * 1024      # ... and at most this much mail in one batch (a big one alone)
PREFETCH_BATCHES = 1                # fetched batches waiting for the main thread: with the one it reads and the
                                    # one being fetched, at most three batches are in memory at once
SIZE_BATCH = 2000                   # UIDs per RFC822.SIZE listing
RECONNECT_DELAYS = (0.5, 1, 2, 4, 8, 15, 30)   # about a minute of trying before giving up
TIMEOUT = 60                        # seconds without a byte from the server before it counts as dropped
# What a lost connection looks like from inside imaplib; a server's NO/BAD answer is not one of these.
DROPPED = (imaplib.IMAP4.abort, OSError, EOFError)


class Renumbered(Exception):
    """The folder's UIDVALIDITY changed under us: its UIDs no longer mean what they did."""


@register
class ImapSource(Source):
    name = "imap"
    separate_streams = True     # each message's bytes are its own: the pipeline may store it on a second thread
    cli_options = (
        Option("--host", "host", "IMAP: the mail server, e.g. imap.gmail.com."),
        Option("--port", "port", "IMAP: port (default 993 for ssl, 143 otherwise).", type=int),
        Option("--user", "user", "IMAP: your login, usually your email address."),
        Option("--password-env", "password_env", "IMAP: read the password from this environment variable "
                                                  "(else you are asked, once the server is reached; it is never "
                                                  "stored). Better than typing on a shared computer; set it with "
                                                  "`read -rs VAR; export VAR`, because a line like VAR=secret "
                                                  "stays in your shell history.", metavar="VAR"),
        Option("--security", "security", "IMAP: how to protect the connection; 'none' only for a server on "
                                         "this machine.", choices=("ssl", "starttls", "none"), default="ssl"),
        Option("--ca-file", "ca_file", "IMAP: trust this certificate (a self-signed server).", type=Path),
        Option("--folder", "folders", "IMAP: a folder to keep (repeatable; default INBOX).", multiple=True),
        Option("--all-folders", "all_folders", "IMAP: keep every folder.", is_flag=True),
        Option("--mail-since", "since", "IMAP: only messages the server received on or after this date, "
                                        "written YYYY-MM-DD (e.g. 2024-03-01).", metavar="DATE",
               old_flags=("--since",)),
        Option("--from", "from_", "IMAP: only messages from this address.", metavar="ADDR"),
    )

    @classmethod
    def check_options(cls, options: dict, ask_secret: AskSecret | None = None) -> dict:
        """Host and user are needed; the password comes from the named variable, else `ask_secret`
        is kept in the options and called only after the server and its certificate are checked."""
        require_account(options)
        options = dict(options)
        _since(options.get("since"))
        variable = options.pop("password_env", None)
        if variable:
            if variable not in os.environ:
                raise UsageError(f"The environment variable {variable} is not set.",
                                 hint="Set it, or leave out --password-env to be asked for the password.")
            options["password"] = os.environ[variable]
        elif ask_secret is not None:
            options["ask_secret"] = ask_secret
        else:
            raise UsageError("No password: there is no terminal to ask on.",
                             hint="Put it in an environment variable and name it with --password-env.")
        return options

    def __init__(self, paths=None, options=None):
        super().__init__(paths, options)
        options = dict(self.options)
        self._password = options.pop("password", None)
        self._ask_secret: AskSecret | None = options.pop("ask_secret", None)
        self.options = options          # without the password, so nothing can print it by accident
        require_account(options)
        self.host = options["host"]
        self.user = options["user"]
        self.security = options.get("security", "ssl")
        if self.security not in ("ssl", "starttls", "none"):
            raise UsageError(f"--security {self.security!r} is not one of ssl, starttls, none.")
        if self.security == "none" and not _is_loopback(self.host):
            raise UsageError(f"Refusing to send your password to {self.host} without encryption.",
                             hint="Use --security ssl (the default) or starttls; 'none' is only for a server "
                                  "on this machine.")
        self.port = int(options.get("port") or (993 if self.security == "ssl" else 143))
        self.ca_file = options.get("ca_file")
        self.since = _since(options.get("since"))
        self.from_ = options.get("from_")
        self.batch = int(options.get("fetch_batch") or FETCH_BATCH)
        self.client: IMAPClient | None = None
        self.peer: dict | None = None
        self.current: tuple[str, int] | None = None     # the folder open now and its UIDVALIDITY
        self.reconnects = 0
        self.failures = 0               # items of this run it could not hand over
        self.stopping = threading.Event()   # the main thread has stopped reading: the fetching thread ends

    def __repr__(self) -> str:
        return f"ImapSource({self.user}@{self.host}:{self.port}, {self.security})"

    # connection -----------------------------------------------------------------
    @property
    def account(self) -> str:
        return f"{quote(self.user, safe='')}@{self.host}:{self.port}"

    def connect(self) -> None:
        """Open, secure, check the certificate, log in. Raises the one-line errors a person needs."""
        where = f"{self.host}:{self.port}"
        from imapclient import IMAPClient
        from imapclient.exceptions import LoginError

        try:
            context = self.tls_context() if self.security != "none" else None
            client = IMAPClient(self.host, port=self.port, ssl=self.security == "ssl", ssl_context=context,
                                timeout=TIMEOUT)
            if self.security == "starttls":
                client.starttls(context)
        except ssl.SSLCertVerificationError as error:
            raise SourceError(f"The certificate of {where} could not be trusted ({error.verify_message}); "
                              "nothing was downloaded.",
                              hint="If this is a server you run with its own certificate, pass it with --ca-file.",
                              location=where) from None
        except (OSError, imaplib.IMAP4.error) as error:
            raise SourceError(f"Could not connect to the mail server {where} ({_reason(error)}).",
                              hint="Check --host, --port and --security, and that this machine is online.",
                              location=where) from None
        client.normalise_times = False   # INTERNALDATE with the zone the server gave
        if self._password is None and self._ask_secret is not None:
            # Only now: the server answered and its certificate holds, so the secret goes somewhere safe.
            try:
                self._password = self._ask_secret(f"Password for {self.user} at {self.host}")
            except BaseException:
                client.shutdown()
                raise
        try:
            client.login(self.user, self._password or "")
        except LoginError:
            client.shutdown()
            raise AuthError(f"The mail server {self.host} refused the user name or password for {self.user}.",
                            hint="Check them and try again (Gmail, Outlook and iCloud need an app password).",
                            location=where) from None
        except DROPPED as error:
            raise SourceError(f"The mail server {where} closed the connection while logging in ({_reason(error)}).",
                              location=where) from None
        self.client = client
        self.peer = {"host": self.host, "port": self.port, "protocol": _protocol(self.security),
                     "tls_cert_sha256": _cert_fingerprint(client)}

    def tls_context(self) -> ssl.SSLContext:
        try:
            # With --ca-file only that certificate is trusted (a self-signed server); else the system's.
            return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        except (OSError, ssl.SSLError) as error:
            raise UsageError(f"Could not read the certificate file {self.ca_file} ({_reason(error)}).",
                             hint="Give a PEM file, such as the server's own certificate.") from None

    def reconnect(self) -> None:
        """After a drop: open a new connection and re-EXAMINE the folder, trying for about a minute."""
        self.close()
        self.reconnects += 1
        last = None
        for delay in RECONNECT_DELAYS:
            if self.stopping.wait(delay):
                break               # nobody is waiting for what would be fetched
            try:
                self.connect()
                if self.current is not None:
                    folder, uidvalidity = self.current
                    if self.examine(folder)[0] != uidvalidity:
                        raise Renumbered(folder)
                return
            except SourceError as error:
                if isinstance(error, AuthError):
                    raise
                last = error
            except DROPPED as error:
                last = error
        raise SourceError(f"The connection to {self.host} was lost and could not be made again "
                          f"({_reason(last)}). Everything fetched before that is kept.",
                          hint="Run the same command again later: it carries on where it stopped.",
                          location=f"{self.host}:{self.port}")

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.logout()
            except Exception:  # the connection is being thrown away; a failed goodbye changes nothing
                try:
                    self.client.shutdown()
                except Exception:
                    pass
            self.client = None

    def call(self, action):
        """Run `action(client)`; on a dropped connection reconnect and run it again."""
        while True:
            try:
                return action(self.client)
            except DROPPED:
                self.reconnect()

    # folders ---------------------------------------------------------------------
    def folder_names(self) -> list[str]:
        if self.options.get("all_folders"):
            return self.existing_folders()
        return list(self.options.get("folders") or ("INBOX",))

    def existing_folders(self) -> list[str]:
        """The folders a person can name with --folder (containers that hold no mail left out)."""
        listed = self.call(lambda client: client.list_folders())
        unopenable = {b"\\noselect", b"\\nonexistent"}   # containers only, or gone (servers vary the case)
        return [name for flags, _delim, name in listed if not unopenable & {flag.lower() for flag in flags}]

    def examine(self, folder: str) -> tuple[int, int]:
        """EXAMINE (read-only SELECT): (UIDVALIDITY, message count)."""
        info = self.client.select_folder(folder, readonly=True)
        uidvalidity = int(info[b"UIDVALIDITY"])
        self.current = (folder, uidvalidity)
        return uidvalidity, int(info.get(b"EXISTS", 0))

    def source_key(self, folder: str, uidvalidity: int, uid: int) -> str:
        return f"imap://{self.account}/{quote(folder, safe='/')};UIDVALIDITY={uidvalidity};UID={uid}"

    def criteria(self) -> list:
        found: list = []
        if self.since:
            found += ["SINCE", self.since]
        if self.from_:
            found += ["FROM", self.from_]
        return found

    # the source ---------------------------------------------------------------------
    def originals(self, ctx: Context) -> Iterator[Original]:
        self.connect()
        try:
            for folder in self.folder_names():
                for _attempt in range(3):
                    try:
                        yield from self.folder(ctx, folder)
                        break
                    except Renumbered:
                        ctx.note(f"The server renumbered {folder} during the run; it was listed again and "
                                 "messages already kept were recognised by their contents.")
            if self.reconnects:
                ctx.note(f"The connection to {self.host} dropped {self.reconnects} time(s); ingest reconnected "
                         "and carried on, and nothing was fetched twice.")
        finally:
            self.close()

    def folder(self, ctx: Context, folder: str) -> Iterator[Original]:
        try:
            uidvalidity, _count = self.call(lambda client: self.examine(folder))
        except IMAPClientError as error:
            names = self.existing_folders()
            if folder not in names:
                listed = sorted(names, key=lambda name: (name.upper() != "INBOX", name.lower()))
                ctx.failed(folder, f"there is no folder by that name on {self.host}. Its folders are: "
                                   f"{', '.join(listed)}")
            else:
                ctx.failed(folder, f"the server would not open this folder ({_reason(error)})")
            return
        state_key = f"{self.account}/{folder}"
        state = json.loads(ctx.get_state(state_key) or "{}")
        highest = state.get("highest", 0)
        if state and state.get("uidvalidity") != uidvalidity:
            ctx.note(f"The server has renumbered {folder} since the last run (UIDVALIDITY {state.get('uidvalidity')} "
                     f"is now {uidvalidity}); it was listed again and messages already kept were recognised by "
                     "their contents.")
            highest = 0
        if state.get("uidvalidity") != uidvalidity:
            ctx.set_state(state_key, json.dumps({"uidvalidity": uidvalidity, "highest": 0}))
        criteria = self.criteria()
        uids = sorted(self.call(lambda client: client.search(criteria or "ALL")))
        ctx.expect(folder, len(uids), "message", "folder")
        below = sum(1 for uid in uids if uid <= highest)
        if below:
            # everything at or below `highest` was committed by an earlier run
            ctx.acquired(folder, below)
            ctx.held_without_asking(below)
        wanted = []
        for uid in uids:
            if uid <= highest:
                continue
            if ctx.already_held(self.source_key(folder, uidvalidity, uid)):
                ctx.acquired(folder)
            else:
                wanted.append(uid)
        ctx.expect_originals(len(wanted))
        failures_before = self.failures
        for batch, messages, refused in self.fetched(folder, wanted):
            for uid, reason in refused:
                self.fail(ctx, f"{folder} UID {uid}", f"the server refused to return it ({reason})")
            for uid in batch:
                item = messages.pop(uid, None)
                if item is None or item.get(b"BODY[]") is None:   # Dovecot sends NIL for a lost file
                    if uid not in dict(refused):
                        self.fail(ctx, f"{folder} UID {uid}", "the server did not return this message (it may "
                                                              "have been deleted while ingest was running)")
                    continue
                original = self.original(ctx, folder, uidvalidity, uid, item)
                # `highest` is committed together with this message, so it never runs ahead of the
                # case; after a failure in this folder it stays put, so the next run asks again.
                if not criteria and self.failures == failures_before:
                    original.state = {state_key: json.dumps({"uidvalidity": uidvalidity, "highest": uid})}
                yield original
        if not criteria and not wanted and uids and uids[-1] > highest:
            # everything listed was already held: the whole folder is settled
            ctx.set_state(state_key, json.dumps({"uidvalidity": uidvalidity, "highest": uids[-1]}))

    def batches(self, uids: list[int]) -> Iterator[list[int]]:
        """UIDs grouped for FETCH: at most `batch` of them and FETCH_BYTES of mail (a big one alone)."""
        for start in range(0, len(uids), SIZE_BATCH):
            chunk = uids[start:start + SIZE_BATCH]
            sizes = self.call(lambda client: client.fetch(chunk, [b"RFC822.SIZE"]))
            batch: list[int] = []
            total = 0
            for uid in chunk:
                size = sizes.get(uid, {}).get(b"RFC822.SIZE", 0)
                if batch and (len(batch) >= self.batch or total + size > FETCH_BYTES):
                    yield batch
                    batch, total = [], 0
                batch.append(uid)
                total += size
            if batch:
                yield batch

    def fetched(self, folder: str, wanted: list[int]) -> Iterator[tuple[list[int], dict, list[tuple[int, str]]]]:
        """(UIDs, {uid: fetched item}, [(uid, why the server refused it)]) per batch, in order, fetched
        on a second thread while the caller stores and parses the batch before."""
        ready: queue.Queue = queue.Queue(maxsize=PREFETCH_BATCHES)
        self.stopping.clear()

        def hand_over(item) -> bool:
            while not self.stopping.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def work() -> None:
            try:
                for batch in self.batches(wanted):
                    refused: list[tuple[int, str]] = []
                    messages = self.fetch(batch, refused)
                    if not hand_over((batch, messages, refused)):
                        return
                hand_over(None)
            except BaseException as error:  # the main thread raises it: the same errors as fetching there
                hand_over(error)

        fetcher = threading.Thread(target=work, name=f"imap fetch {folder}", daemon=True)
        fetcher.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.stopping.set()
            fetcher.join()

    def fetch(self, batch: list[int], refused: list[tuple[int, str]]) -> dict:
        """{uid: item} of one FETCH. A batch the server refuses (one damaged message can do that) is
        asked for a UID at a time, to name the one it will not return in `refused`."""
        try:
            return self.call(lambda client: client.fetch(batch, FETCH_ITEMS))
        except IMAPClientError as error:
            if len(batch) == 1:
                refused.append((batch[0], _reason(error)))
                return {}
        found: dict = {}
        for uid in batch:
            found.update(self.fetch([uid], refused))
        return found

    def fail(self, ctx: Context, location: str, reason: str) -> None:
        self.failures += 1
        ctx.failed(location, reason)

    def original(self, ctx: Context, folder: str, uidvalidity: int, uid: int, item: dict) -> Original:
        body = item[b"BODY[]"]
        meta = {"folder": folder, "uid": uid, "uidvalidity": uidvalidity,
                "flags": [_flag(flag) for flag in item.get(b"FLAGS", ())],
                "rfc822_size": item.get(b"RFC822.SIZE")}
        internal = item.get(b"INTERNALDATE")
        if isinstance(internal, datetime):
            meta["internaldate"] = internal.isoformat()
        if meta["rfc822_size"] is not None and meta["rfc822_size"] != len(body):
            ctx.warn(f"{folder} UID {uid}: the server said {meta['rfc822_size']} bytes but sent {len(body)}; "
                     "what it sent is kept")
        return Original(stream=io.BytesIO(body), source_key=self.source_key(folder, uidvalidity, uid),
                        filename=None, source_meta=meta, peer=self.peer, container=folder,
                        declared_type="message/rfc822")


def require_account(options: dict) -> None:
    if not options.get("host") or not options.get("user"):
        raise UsageError("IMAP needs --host and --user.", hint="e.g. --host imap.example.com --user me@example.com")


def _since(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--mail-since {text!r} is not a date.", hint="Write it as YYYY-MM-DD, e.g. 2024-03-01.") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _protocol(security: str) -> str:
    return {"ssl": "imaps", "starttls": "imap+starttls", "none": "imap"}[security]


def _cert_fingerprint(client: IMAPClient) -> str | None:
    sock = client.socket()
    if isinstance(sock, ssl.SSLSocket):
        der = sock.getpeercert(binary_form=True)
        return hashlib.sha256(der).hexdigest() if der else None
    return None


def _flag(flag) -> str:
    return flag.decode("utf-8", "replace") if isinstance(flag, bytes) else str(flag)


def _reason(error: BaseException | None) -> str:
    """An error as a short phrase; never the command that was sent (a LOGIN carries the password)."""
    if error is None:
        return "no reason given"
    if isinstance(error, socket.timeout):
        return "no answer in time"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return "no such host"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error).strip() or type(error).__name__
    return text[:200]
