"""The README.txt of a bundle: how an officer with no ingest installed checks it, in plain words.

The checks run in the order that makes each one count: the signature on the list
of files, then every file against the list, then the BagIt packaging.
"""

from __future__ import annotations

from ingest import TOOL
from ingest.case import Case


def describe_selection(selection: dict) -> str:
    return "; ".join(f"{key} {', '.join(value) if isinstance(value, list) else value}"
                     for key, value in selection.items())


def readme(case: Case, folder: str, records: int, files: int, fingerprint: str, selection: dict,
           exported_at: str, *, seal: str, seal_line: int, tsa: str | None) -> str:
    scope = (f"This is a selection of the case ({describe_selection(selection)}), with every selected item's parent and\n"
             "attachments." if selection else "This is the whole case.")
    token = f"""
5. If SHA256SUMS.tsr is present, a time-stamping authority ({tsa}) signed the
   time at which SHA256SUMS existed. With that authority's CA certificate
   (from its website) saved as tsa-ca.pem:
       openssl ts -verify -in SHA256SUMS.tsr -data SHA256SUMS -CAfile tsa-ca.pem
   It must say "Verification: OK". See the time with
       openssl ts -reply -in SHA256SUMS.tsr -text
""" if tsa else ""
    return f"""EVIDENCE BUNDLE: {case.config.name}
{'=' * (17 + len(case.config.name))}

Exported {exported_at} by {TOOL}, kept by {case.config.operator}.
{records} record(s) and {files} original file(s). {scope}

Times are given in UTC or with their offset; times the source wrote without a
zone were read as {case.config.timezone} and are marked "timezone_assumed".
Where files came from is shown as their folder and name only; full local paths
stay with the person who kept the evidence.

SIGNING KEY FINGERPRINT (ask the person who gave you this bundle to read theirs
out; it must be the same):

    {fingerprint}

SEAL OF THE CUSTODY LOG IN THIS BUNDLE (line {seal_line}; note it down with the date you
received the bundle):

    {seal}

If the person gave you a seal code earlier (by text or email), it must match a
line of data/custody.jsonl: with ingest installed, "ingest verify {folder} --seal CODE".


WHAT IS IN THE BUNDLE
---------------------
data/report.html      the report: open it in any web browser (it works offline)
data/manifest.json    every record: what happened, when (two times), who, and
                      the SHA-256 and BLAKE3 of its original file
data/manifest.csv     the same records, for a spreadsheet
data/originals/       the original files, byte for byte as they were kept,
                      named by record id and their original name
data/derived/         text read from images (OCR) and thumbnails
data/custody.jsonl    the chain-of-custody log: every action taken on the case
                      up to this export, each line naming the BLAKE3 hash of the
                      line before
SHA256SUMS            the SHA-256 of every other file in the bundle
SHA256SUMS.sig        the case's Ed25519 signature over SHA256SUMS
public_key.pem        the case's public key, to check that signature
bagit.txt, bag-info.txt, manifest-*.txt, tagmanifest-*.txt
                      the BagIt (RFC 8493) packaging


HOW TO CHECK IT (standard tools; ingest itself is not needed)
---------------
If the bundle came as a .zip file, unzip it first; the commands below are run
in the folder {folder}/ (the one holding this README), in this order.

1. The signature on the list of files, with OpenSSL 3:
       openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig
   It must say "Signature Verified Successfully". Then check the key is the
   case's key: its fingerprint is the SHA-256 of the raw public key,
       openssl pkey -pubin -in public_key.pem -outform DER | tail -c 32 | sha256sum
   Its first 32 hex digits must equal the fingerprint above (shown in groups
   of four) and the fingerprint the person read out to you.

2. Every file against the signed list:
       sha256sum -c SHA256SUMS
   Every line must say OK. (macOS: shasum -a 256 -c SHA256SUMS)
   On Windows, for a file listed in SHA256SUMS (use \\ for /):
       certutil -hashfile data\\manifest.json SHA256
   or in PowerShell:
       Get-FileHash -Algorithm SHA256 data\\manifest.json
   The hash shown must equal the one on that file's line in SHA256SUMS.
   A file in the folder that SHA256SUMS does not list (other than SHA256SUMS.sig
   and SHA256SUMS.tsr, which are made over the list) was added later.

3. The BagIt packaging (SHA-256 and SHA-512 of every file):
       bagit.py --validate .
   (bagit.py comes with "pip install bagit".) It must say the bag is valid.

4. The custody log: each line's "prev" is the BLAKE3 hash of the line before
   it, so a changed, removed or reordered line breaks the chain. To check
   line N (needs b3sum):
       sed -n 'Np' data/custody.jsonl | tr -d '\\n' | b3sum
   must equal the "prev" of line N+1. A line's "private" block holds only the
   hash of what stays on the person's computer (their folders, the computer's name).
   A seal code fixes lines 1 to N; to compute the seal of line N (needs b3sum):
       printf 'ingest-seal/1 N %s' "$(sed -n 'Np' data/custody.jsonl | tr -d '\\n' | b3sum --no-names)" | b3sum --raw -l 10 | base32
   It prints the seal's 16 letters and digits without the dashes. The seal above is line {seal_line}'s.
{token}
With ingest installed, "ingest verify {folder}" makes all of these checks at
once, also checks each record against its original, and names every problem.
Add --fingerprint "XXXX XXXX ..." to refuse a bundle signed by any other key.
"""
