"""Evidence the app tests upload, made here: a WhatsApp export and a phone screenshot."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

from image_helpers import chat_screenshot

CHAT = ("12/03/2024, 21:40 - Jordan: I know you moved\n"
        "12/03/2024, 21:41 - Jordan: I saw your car at the station\n"
        "12/03/2024, 21:45 - Sam: Please stop contacting me\n")
SCREENSHOT_NAME = "Screenshot_20240313-081530.png"


def whatsapp_export(folder: Path) -> Path:
    path = folder / "WhatsApp Chat with Jordan.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("WhatsApp Chat with Jordan.txt", CHAT)
    return path


def screenshot(folder: Path) -> Path:
    image, _text = chat_screenshot([("Answer the door I am outside your flat", True)], clock="08:15")
    path = folder / SCREENSHOT_NAME
    image.save(path)
    return path


def wait_for(condition, seconds: float = 120, what: str = "the work to finish"):
    """Poll until `condition()` is truthy (work on a thread, a server starting)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")
