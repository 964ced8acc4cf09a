"""`ingest seal` and `ingest verify --seal`: an anchor for the custody log outside the case.

    seal_log(case, tsa=None) -> Seal        check_seal(log, code, verification)

A seal is 16 base32 characters in groups of four (80 bits of BLAKE3 over the
log's line count and the hash of its last line). The victim texts it to the
officer, writes it down or emails it to themselves; whoever holds it can later
prove the log up to that line is unchanged, even against a rewrite of the whole
chain with the index updated to match, because the code never lived in the case.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import blake3

from store.custody import CustodyLog

from ingest.case import Case
from ingest.model.errors import UsageError
from ingest.features.tsa import TsaError, timestamp
from ingest.features.verify import Problem, Verification

SEAL_FORMAT = "ingest-seal/1"
SEAL_BYTES = 10          # 80 bits: 16 base32 characters
# People copy codes by hand: read the look-alikes as the letters base32 uses.
LOOKALIKES = str.maketrans({"0": "O", "1": "I", "8": "B"})


@dataclass(frozen=True)
class Seal:
    code: str
    line: int            # the log's length when sealed: the code commits to lines 1..line
    head: str            # BLAKE3 of that line
    time: str            # when it was made (the time of its own custody line)
    tsa_time: str | None = None
    tsa_problem: str | None = None

    def to_json(self) -> dict:
        return {"seal": self.code, "line": self.line, "time": self.time,
                **({"tsa_time": self.tsa_time} if self.tsa_time else {}),
                **({"tsa_problem": self.tsa_problem} if self.tsa_problem else {})}


def statement(line: int, head: str) -> bytes:
    """What a seal commits to; also what a time-stamping authority stamps."""
    return f"{SEAL_FORMAT} {line} {head}".encode()


def seal_code(line: int, head: str) -> str:
    code = base64.b32encode(blake3.blake3(statement(line, head)).digest()[:SEAL_BYTES]).decode()
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def normalise(code: str) -> str:
    """A seal as typed (any case, spaces or dashes, 0/1/8 for O/I/B) in its printed form."""
    letters = re.sub(r"[\s-]+", "", code).upper().translate(LOOKALIKES)
    if not re.fullmatch(r"[A-Z2-7]{16}", letters):
        raise UsageError(f"{code!r} is not a seal code.", hint="A seal is 16 letters and digits in groups of four, "
                                                                "e.g. ABCD-EFGH-2345-WXYZ.")
    return "-".join(letters[i:i + 4] for i in range(0, 16, 4))


def seal_log(case: Case, tsa: str | None = None) -> Seal:
    """Seal the log as it is now and record the seal in it (the seal line itself comes after
    what it seals). With `tsa`, a time-stamping authority also stamps the sealed statement."""
    case.require_intact()
    line, head = case.custody.tail()
    code = seal_code(line, head)
    detail = {"seal": code, "line": line, "head": head}
    stamp, problem = None, None
    if tsa:
        try:
            stamp = timestamp(tsa, statement(line, head))
            # the token goes in the log as URL-safe base64: no "/" for the path scrubber to mistake for a path
            detail.update(tsa=tsa, tsa_time=stamp.time, tsa_response=base64.urlsafe_b64encode(stamp.response).decode())
        except TsaError as error:
            problem = str(error)
            detail.update(tsa=tsa, tsa_problem=problem)
    entry = case.custody_entry("seal", {}, detail)
    case.commit([entry])
    return Seal(code, line, head, entry["time"], stamp.time if stamp else None, problem)


def check_seal(log: CustodyLog, code: str, result: Verification) -> None:
    """Add a problem to `result` unless some line N of `log` is the one `code` sealed, with the
    chain from line 1 to N unbroken: then lines 1..N are exactly as they were when sealed."""
    wanted = normalise(code)
    broken = False
    for number, _entry, digest, problems in log.walk():
        broken = broken or bool(problems)
        if seal_code(number, digest) == wanted:
            if broken:
                break
            result.notes.append(f"The seal {wanted} matches custody line {number}: the log up to it is unchanged.")
            return
    result.problems.append(Problem(f"seal {wanted}", "no line of the custody log matches it: the log up to the "
                                                     "moment the seal was given has been changed"))
