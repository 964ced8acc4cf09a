"""`ingest app`: a local web app over the same library the CLI uses, for people who will
never open a terminal.

Starlette on uvicorn, bound to 127.0.0.1 only; Jinja2 pages rendered on the server, so
everything works without JavaScript; a little JavaScript written here (drag and drop,
upload progress, the Esc quick exit) is served by the app itself. Nothing is fetched
from anywhere else. `security.Guard` keeps other pages in the same browser out.

    create_app(...)  the ASGI app (what the tests drive)
    serve(...)       bind, print the tokened address, open the browser, run until Ctrl-C/SIGTERM
"""

from __future__ import annotations

from ingest.features.app.routes import create_app
from ingest.features.app.security import new_token
from ingest.features.app.server import serve
from ingest.features.app.state import AppState

__all__ = ["AppState", "create_app", "new_token", "serve"]
