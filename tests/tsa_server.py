"""A real RFC 3161 time-stamping authority for tests: an openssl CA, a TSA certificate with the
critical timeStamping extended key usage, and an HTTP server on 127.0.0.1 that answers each
query with `openssl ts -reply`."""

from __future__ import annotations

import http.server
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

TS_CONFIG = """
[ tsa ]
default_tsa = tsa_config

[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.4146.2.3
other_policies = 1.3.6.1.4.1.4146.2.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def openssl(*args, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_authority(folder: Path) -> Path:
    """CA and TSA keys and certificates, and the `openssl ts` config, in `folder`; returns the CA certificate."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=Test Time CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr",
            "-subj", "/CN=Test Time Stamping Authority", cwd=folder)
    (folder / "tsa.ext").write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                                    "extendedKeyUsage=critical,timeStamping\n")
    openssl("x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "tsa.pem", "-days", "2", "-extfile", "tsa.ext", cwd=folder)
    (folder / "serial").write_text("01\n")
    (folder / "ts.cnf").write_text(TS_CONFIG.format(dir=folder))
    return folder / "ca.pem"


class Handler(http.server.BaseHTTPRequestHandler):
    folder: Path
    garbage: bool = False
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (the http.server API)
        query = self.rfile.read(int(self.headers["Content-Length"]))
        if self.garbage:
            body = b"this is not a time-stamp token"
        else:
            with self.lock, tempfile.TemporaryDirectory(dir=self.folder) as scratch:
                (Path(scratch) / "query.tsq").write_bytes(query)
                openssl("ts", "-reply", "-config", self.folder / "ts.cnf", "-queryfile", "query.tsq",
                        "-out", "reply.tsr", cwd=Path(scratch))
                body = (Path(scratch) / "reply.tsr").read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def serve(folder: Path, *, garbage: bool = False):
    """Run the authority on 127.0.0.1; yields its URL."""
    handler = type("TsaHandler", (Handler,), {"folder": folder, "garbage": garbage})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tsa"
    finally:
        server.shutdown()
        server.server_close()
