"""The app's own settings (the quick-exit site) and the defaults read from this computer."""

from __future__ import annotations

import json
import locale
import os
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

from ingest.case import check_timezone
from ingest.kit.phones import known_region
from ingest.model.errors import UsageError

# A page nobody would remark on: the weather.
DEFAULT_EXIT_SITE = "https://www.bbc.co.uk/weather"
SETTINGS_FILE = "app.json"


def settings_path() -> Path:
    return Path(platformdirs.user_config_dir("ingest")) / SETTINGS_FILE


def load() -> dict:
    try:
        saved = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}
    return {"exit_site": saved.get("exit_site") if isinstance(saved, dict) and _is_web(saved.get("exit_site"))
            else DEFAULT_EXIT_SITE}


def save_exit_site(url: str) -> None:
    url = url.strip()
    if not _is_web(url):
        raise UsageError(f"{url!r} is not a web address.", hint="Write it like https://www.bbc.co.uk/weather.")
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({**load(), "exit_site": url}), encoding="utf-8")
    os.chmod(temporary, 0o600)
    temporary.replace(path)


def _is_web(url) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def system_timezone() -> str:
    """This computer's time zone as an IANA name (TZ, /etc/timezone, /etc/localtime), else Europe/London."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    except OSError:
        pass
    try:
        target = os.readlink("/etc/localtime")
        candidates.append(target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else "")
    except OSError:
        pass
    for name in candidates:
        if name:
            try:
                return check_timezone(name)
            except UsageError:
                continue
    return "Europe/London"


def system_region() -> str:
    """This computer's country from its locale (en_GB -> GB), else GB."""
    for value in (os.environ.get("LC_ALL"), os.environ.get("LANG"), locale.getlocale()[0]):
        if value and "_" in value:
            code = value.split("_", 1)[1][:2].upper()
            if known_region(code):
                return code
    return "GB"
