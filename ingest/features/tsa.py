"""Trusted time: an RFC 3161 time-stamp token from a time-stamping authority the user names.

    timestamp(url, data) -> Stamp(response, time)

Only with `--tsa URL` does anything leave the machine, and then only the SHA-256
of what is stamped (the bundle's SHA256SUMS, or a seal), never the evidence.
The request and the reply are built and read with rfc3161-client; the reply is
kept whole (a TimeStampResp, the `.tsr` that `openssl ts -verify -in` reads).
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from dataclasses import dataclass

from rfc3161_client import HashAlgorithm, PKIStatus, TimestampRequestBuilder, decode_timestamp_response

from ingest.model.errors import IngestError

TIMEOUT_S = 20
REPLY_LIMIT = 1 << 20


class TsaError(IngestError):
    """The time-stamping authority could not be reached or gave no usable token."""


@dataclass(frozen=True)
class Stamp:
    response: bytes     # the DER TimeStampResp, as the authority sent it
    time: str           # the authority's genTime, ISO 8601 UTC


def timestamp(url: str, data: bytes) -> Stamp:
    """Ask `url` for a token over SHA-256(data); check it answers this request, then return it."""
    if not url.lower().startswith(("http://", "https://")):
        raise TsaError(f"The time-stamping address {url!r} is not an http:// or https:// address.")
    request = TimestampRequestBuilder(data=data, hash_algorithm=HashAlgorithm.SHA256, nonce=True, cert_req=True).build()
    post = urllib.request.Request(url, data=request.as_bytes(), method="POST",
                                  headers={"Content-Type": "application/timestamp-query",
                                           "Accept": "application/timestamp-reply"})
    try:
        with urllib.request.urlopen(post, timeout=TIMEOUT_S) as answer:
            body = answer.read(REPLY_LIMIT + 1)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise TsaError(f"The time-stamping authority at {url} could not be reached ({reason}).") from None
    try:
        reply = decode_timestamp_response(body[:REPLY_LIMIT])
    except Exception:   # the decoder raises its own and ValueError for garbage; any means "not a token"
        raise TsaError(f"The time-stamping authority at {url} did not answer with a time-stamp token.") from None
    if reply.status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        raise TsaError(f"The time-stamping authority at {url} refused the request ({reply.status_string or reply.status}).")
    info = reply.tst_info
    if info.message_imprint.message != hashlib.sha256(data).digest() or info.nonce != request.nonce:
        raise TsaError(f"The time-stamping authority at {url} answered with a token for something else.")
    return Stamp(response=body, time=info.gen_time.strftime("%Y-%m-%dT%H:%M:%SZ"))
