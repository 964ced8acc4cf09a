"""A real, throwaway Dovecot for tests and benchmarks: 127.0.0.1 on free high ports, its own
config, users file, Maildirs and self-signed certificate (SAN IP:127.0.0.1), TLS on.

    with Dovecot() as server:
        user = server.add_user("victim")
        server.add_messages(user, [b"From: ...", ...])
        ... server.port, server.cert, server.connect(user) ...

Dovecot runs as root and drops to uid 65534 for mail, so the folder it lives in must
be traversable by others (a 0700 pytest tmp dir makes logins fail with "Temporary
authentication failure"): it lives in its own 0755 folder under /tmp, removed at stop.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from imapclient import IMAPClient

from conftest import descendants, ended

MAIL_UID = 65534     # nobody: the static userdb's owner of every Maildir


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class User:
    name: str
    password: str
    maildir: Path


class Dovecot:
    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="ingest-dovecot-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        self.port = free_port()          # IMAPS (TLS from the first byte)
        self.plain_port = free_port()    # IMAP (STARTTLS, or plain text for loopback tests)
        self.cert = self.root / "cert.pem"
        self.key = self.root / "key.pem"
        self.passwd = self.root / "passwd"       # one file per user: Dovecot reads it afresh at each login
        self.config = self.root / "dovecot.conf"
        self.log = self.root / "dovecot.log"
        self.process: subprocess.Popen | None = None
        self.users: dict[str, User] = {}
        self._counter = 0
        self._make_certificate()
        self.passwd.mkdir(mode=0o755)
        self._write_config()

    # setup -----------------------------------------------------------------------
    def _make_certificate(self) -> None:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(self.key), "-out", str(self.cert)], check=True, capture_output=True)
        os.chmod(self.cert, 0o644)

    def _write_config(self) -> None:
        root = self.root
        for folder in ("run", "state", "home"):
            (root / folder).mkdir(mode=0o755, exist_ok=True)
        self.config.write_text(f"""
instance_name = ingest-test-{self.port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {self.log}
listen = 127.0.0.1
protocols = imap
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
disable_plaintext_auth = no
auth_mechanisms = plain login
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}
mail_location = maildir:{root}/home/%u/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd}/%u
}}
userdb {{
  driver = static
  args = uid={MAIL_UID} gid={MAIL_UID} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {self.plain_port}
  }}
  inet_listener imaps {{
    port = {self.port}
    ssl = yes
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
""")

    def add_user(self, name: str, password: str | None = None) -> User:
        password = password or f"pw-{name}-{os.urandom(4).hex()}"
        maildir = self.root / "home" / name / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        _chown_tree(self.root / "home" / name)
        entry = self.passwd / name
        entry.write_text(f"{name}:{{PLAIN}}{password}\n")
        os.chmod(entry, 0o644)
        user = User(name, password, maildir)
        self.users[name] = user
        return user

    def add_messages(self, user: User, messages: list[bytes], *, folder: str | None = None,
                     flags: list[str] | None = None, mtime: float | None = None) -> None:
        """Deliver straight into the Maildir (Dovecot numbers them when it next looks), oldest first."""
        target = user.maildir if folder is None else user.maildir / f".{folder}"
        for sub in ("cur", "new", "tmp"):
            (target / sub).mkdir(parents=True, exist_ok=True)
        base = mtime or time.time() - len(messages)
        for index, data in enumerate(messages):
            self._counter += 1
            info = (flags[index] if flags else "")
            name = f"{int(base) + index}.M{self._counter}P{os.getpid()}.ingest-test:2,{info}"
            path = target / "cur" / name
            path.write_bytes(data)
            os.utime(path, (base + index, base + index))
        _chown_tree(target)

    # running -----------------------------------------------------------------------
    def start(self) -> None:
        self.process = subprocess.Popen(["dovecot", "-c", str(self.config), "-F"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot did not start: {self.process.stderr.read().decode()} "
                                   f"{self.log.read_text() if self.log.exists() else ''}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("dovecot did not start listening in 15 s")

    def stop(self) -> None:
        """Stop the server and every process it started, as a restart of the service does: systemd
        TERMs every process of the service at once, and KILLs only what is still there later. (KILLing
        the sessions at once, as this did, could leave the Maildir's lock file behind: the next session's
        EXAMINE then waited two minutes, "* NO Mailbox is locked, will abort in 90 seconds".)"""
        if self.process and self.process.poll() is None:
            children = descendants(self.process.pid)
            for pid in (self.process.pid, *children):
                _signal(pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            ended(children, within=10)
            for pid in children:
                _signal(pid, signal.SIGKILL)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Dovecot":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def connect(self, user: User) -> IMAPClient:
        """A second, independent client (verifying the test certificate), logged in."""
        context = ssl.create_default_context(cafile=str(self.cert))
        client = IMAPClient("127.0.0.1", port=self.port, ssl=True, ssl_context=context, timeout=30)
        client.login(user.name, user.password)
        return client

    def cert_sha256(self) -> str:
        import hashlib
        der = ssl.PEM_cert_to_DER_cert(self.cert.read_text())
        return hashlib.sha256(der).hexdigest()


def _signal(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def _chown_tree(root: Path) -> None:
    os.chown(root, MAIL_UID, MAIL_UID)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), MAIL_UID, MAIL_UID)
