"""Realistic fictional mail for the email, mbox and IMAP tests and benchmarks.

People are fictional; addresses are at example.com / example.org / example.net.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

SENDERS = [("Dan Reeve", "dan.reeve@example.com"), ("D R", "throwaway.dr@example.net"),
           ("Claire Moss", "claire.moss@example.org"), ("Unknown", "no-reply@example.net")]
VICTIM = ("Sam Patel", "sam.patel@example.org")
LINES = ["I know where you were last night.", "Why won't you answer me?", "I saw your car outside the gym.",
         "You can't ignore me forever.", "Meet me after work, we need to talk.",
         "I'm sorry about earlier, please reply.", "Everyone will find out what you did.",
         "Je sais où tu habites — café à 8h.", "Ты меня слышишь?", "返事をください。"]


def message(index: int, *, seed: int = 7, attachment_bytes: int | None = None) -> bytes:
    """One message in the shape real mail has: Received chain, authentication results, and a mix
    of plain, HTML alternative, non-ASCII charsets and small attachments."""
    rng = random.Random(seed * 100_003 + index)
    name, address = SENDERS[index % len(SENDERS)]
    moment = datetime(2024, 3, 1, 21, 41, 5, tzinfo=timezone.utc) + timedelta(minutes=37 * index)
    msg = EmailMessage()
    msg["Return-Path"] = f"<{address}>"
    msg["Received"] = (f"from mx{index % 3}.example.net (mx{index % 3}.example.net [192.0.2.{index % 250 + 1}]) "
                       f"by mail.example.org with ESMTPS id {index:08x} for <{VICTIM[1]}>; "
                       f"{format_datetime(moment + timedelta(seconds=3))}")
    msg["Received"] = (f"from laptop (host-198-51-100-{index % 200}.example.net [198.51.100.{index % 200}]) "
                       f"by mx{index % 3}.example.net with ESMTPSA id {index:06d}; {format_datetime(moment)}")
    verdict = "pass" if index % 5 else "fail"
    msg["Authentication-Results"] = (f"mail.example.org; spf={verdict} smtp.mailfrom={address}; "
                                     f"dkim={verdict} header.d={address.split('@')[1]}; "
                                     f"dmarc={verdict} header.from={address.split('@')[1]}")
    msg["From"] = f"{name} <{address}>"
    msg["To"] = f"{VICTIM[0]} <{VICTIM[1]}>"
    if index % 7 == 0:
        msg["Cc"] = "friend@example.com"
    msg["Subject"] = f"Re: {LINES[index % len(LINES)][:24]} #{index}"
    msg["Date"] = format_datetime(moment)
    msg["Message-ID"] = f"<{index}.{seed}@mail.example.net>"
    body = "\n".join(rng.choice(LINES) for _ in range(rng.randint(3, 40)))
    if index % 3 == 1:
        msg.set_content(body, charset="iso-8859-1" if all(ord(char) < 256 for char in body) else "utf-8")
        msg.add_alternative(f"<html><body><p>{body.replace(chr(10), '<br>')}</p></body></html>", subtype="html")
    else:
        msg.set_content(body)
    size = attachment_bytes if attachment_bytes is not None else (rng.randint(2_000, 60_000) if index % 4 == 0 else 0)
    if size:
        msg.add_attachment(rng.randbytes(size), maintype="image", subtype="jpeg", filename=f"photo-{index}.jpg")
    return msg.as_bytes()


def mbox(messages: list[bytes]) -> bytes:
    """An mboxrd file of these messages: envelope lines, `>From ` quoting, a blank line between."""
    out = []
    for index, data in enumerate(messages):
        quoted = b"\n".join(b">" + line if line.lstrip(b">").startswith(b"From ") else line
                            for line in data.replace(b"\r\n", b"\n").split(b"\n"))
        out.append(b"From sender%d@example.com Fri Mar  1 21:41:05 2024\n" % index + quoted.rstrip(b"\n") + b"\n\n")
    return b"".join(out)


def write_big_message(path, attachment_size: int) -> str:
    """An mbox of one message with a base64 video of `attachment_size` bytes; returns its SHA-256."""
    sha = hashlib.sha256()
    block = os.urandom(57 * 16384)          # 57 bytes make one 76-character line
    with open(path, "wb") as out:
        out.write(b"From jamie@example.org Fri Mar  1 21:41:05 2024\n"
                  b"From: Jamie Doe <jamie@example.org>\nTo: me@example.org\nSubject: the video\n"
                  b"Date: Fri, 01 Mar 2024 21:41:05 +0000\nMIME-Version: 1.0\n"
                  b'Content-Type: multipart/mixed; boundary="b1"\n\n--b1\nContent-Type: text/plain\n\nWatch this.\n'
                  b'--b1\nContent-Type: video/mp4\nContent-Disposition: attachment; filename="clip.mp4"\n'
                  b"Content-Transfer-Encoding: base64\n\n")
        left = attachment_size
        while left > 0:
            chunk = block[:left]
            sha.update(chunk)
            out.write(base64.encodebytes(chunk))
            left -= len(chunk)
        out.write(b"--b1--\n")
    return sha.hexdigest()
