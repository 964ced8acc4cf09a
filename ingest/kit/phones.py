"""Phone numbers to E.164 with the case region, the raw form always kept beside."""

from functools import lru_cache


@lru_cache(maxsize=65536)
def e164(raw: str, region: str) -> str | None:
    """E.164 form of `raw`, or None for what is not a dialable number (short codes, names, 'Unknown')."""
    text = (raw or "").strip()
    if not text or not any(ch.isdigit() for ch in text):
        return None
    import phonenumbers     # here: its import is ~8% of every command's start, and most never need it
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    # Local-only lengths (short codes like 7535, 118118) have no E.164 form; "possible" alone lets them through.
    if phonenumbers.is_possible_number_with_reason(number) != phonenumbers.ValidationResult.IS_POSSIBLE:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def known_region(code: str) -> bool:
    """Is `code` a region phone numbers are read in (GB, US...)?"""
    import phonenumbers
    return code in phonenumbers.SUPPORTED_REGIONS
