"""What keeps a hostile page in the same browser away from the app.

Every request must name the app's own address in its Host header (a DNS-rebinding
page names its own) and carry the launch token, in the URL once (it then becomes a
SameSite=Strict cookie and the token leaves the address bar) or in that cookie.
Writing requests must also come from the app's own origin and carry the form's CSRF
token (checked where the form is read: see `forms.py`). Every response forbids
caching, framing, sniffing, referrers and anything not served by the app itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers, MutableHeaders

TOKEN_PARAM = "token"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: under no-referrer a browser sends `Origin: null` with a
    # form post, and the app could not tell its own forms from a sandboxed stranger's
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
SAFE_METHODS = {"GET", "HEAD"}


def new_token() -> str:
    """The launch token: 256 random bits, new every time the app starts."""
    return secrets.token_urlsafe(32)


def csrf_token(launch_token: str) -> str:
    """The forms' token: derived from the launch token, so it lives exactly as long as the launch."""
    return hmac.new(launch_token.encode(), b"csrf", hashlib.sha256).hexdigest()


def csrf_ok(launch_token: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token(launch_token), sent)


class Guard:
    """ASGI middleware: the Host check, the launch token, the origin check, the headers."""

    def __init__(self, app, *, token: str, port: int):
        self.app = app
        self.token = token
        self.cookie = f"ingest-{port}"        # cookies are shared across ports: one name per launch
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return await _refuse(send, 403, "This app answers web pages only.")
        headers = Headers(scope=scope)
        if headers.get("host") not in self.hosts:
            return await _refuse(send, 421, "This address is not the app's own. Open the address ingest printed.")
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if TOKEN_PARAM in query:
            if not hmac.compare_digest(query[TOKEN_PARAM], self.token):
                return await _refuse(send, 403, "This link is out of date. Open the address ingest printed "
                                                "when it started.")
            return await self._admit(scope, send, query)
        if not hmac.compare_digest(_cookie(headers, self.cookie), self.token):
            return await _refuse(send, 403, "Open the app from the address ingest printed when it started.")
        if scope["method"] not in SAFE_METHODS and not self._same_origin(headers):
            return await _refuse(send, 403, "This request did not come from the app's own page.")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                _secure(MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _same_origin(self, headers: Headers) -> bool:
        origin = headers.get("origin")
        site = headers.get("sec-fetch-site")
        return (origin is None or origin in {f"http://{host}" for host in self.hosts}) and \
            site in (None, "same-origin", "none")

    async def _admit(self, scope, send, query: dict) -> None:
        """The tokened link: set the cookie, then send the browser on without the token."""
        rest = urlencode({key: value for key, value in query.items() if key != TOKEN_PARAM})
        location = scope["path"] + (f"?{rest}" if rest else "")
        headers = [(b"location", location.encode()),
                   (b"set-cookie", f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode())]
        await _respond(send, 303, b"", headers)


def _cookie(headers: Headers, name: str) -> str:
    jar = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:   # a malformed Cookie header is treated as no cookie
        return ""
    return jar[name].value if name in jar else ""


def _secure(headers: MutableHeaders) -> None:
    for name, value in HEADERS.items():
        if name not in headers:
            headers[name] = value


async def _refuse(send, status: int, message: str) -> None:
    await _respond(send, status, (message + "\n").encode(), [(b"content-type", b"text/plain; charset=utf-8")])


async def _respond(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    secured = MutableHeaders(raw=list(headers))
    _secure(secured)
    secured["content-length"] = str(len(body))
    await send({"type": "http.response.start", "status": status, "headers": secured.raw})
    await send({"type": "http.response.body", "body": body})
