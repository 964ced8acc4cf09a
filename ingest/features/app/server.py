"""Running the app: bind 127.0.0.1 (a free port by default), print the tokened address,
open the browser, serve until Ctrl-C or SIGTERM, then remove the scratch folder."""

from __future__ import annotations

import shutil
import signal
import socket
import tempfile
import threading
import webbrowser
from pathlib import Path
from typing import Callable

from ingest.model.errors import UsageError

HOST = "127.0.0.1"       # never any other interface: the app is for this computer only


def bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as error:
        sock.close()
        raise UsageError(f"Cannot use port {port} ({error.strerror}).",
                         hint="Leave out --port to let ingest choose a free one.") from None
    sock.listen(128)
    return sock


def serve(case_dir: Path, *, port: int = 0, open_browser: bool = True, say: Callable[[str], None] = print) -> None:
    import uvicorn

    from ingest.features.app.security import new_token
    from ingest.features.app.routes import create_app
    from ingest.features.app.state import AppState

    sock = bind(port)
    port = sock.getsockname()[1]
    workdir = Path(tempfile.mkdtemp(prefix="ingest-app-"))
    token = new_token()
    app = create_app(AppState(case_dir=Path(case_dir), token=token, port=port, workdir=workdir))
    url = f"http://{HOST}:{port}/?token={token}"
    # access_log off: the log would print the token in every first request's line
    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False, lifespan="off")
    server = uvicorn.Server(config)
    say(url)
    if open_browser:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    # uvicorn shuts down gracefully on Ctrl-C and SIGTERM, then raises the signal again:
    # these handlers turn that into a normal return, so the scratch folder is removed.
    previous = {number: signal.signal(number, _stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    except _Stopped:
        pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        sock.close()
        shutil.rmtree(workdir, ignore_errors=True)


class _Stopped(Exception):
    pass


def _stop(_number, _frame):
    raise _Stopped()
