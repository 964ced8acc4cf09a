"""Day/month order of numeric dates: one table of the regions that write the month first.

Every parser that meets an ambiguous date (03/04/2024, no day above 12 anywhere in the
file to settle it) asks here, so a case reads a chat and a call log the same way.

The table follows CLDR (what phones and computers write in each region): the regions
whose main locales write a short date month first. Canada is the exception, chosen
here: its own locales (en_CA, fr_CA) write the year first, so an ambiguous d/m-or-m/d
date from a Canadian device comes from one set to US English (M/d/yy), which is the
common fallback there; a day above 12 in the file overrides this, and the run summary
always says which order was used. Belize, Micronesia and Palau write day first in CLDR
(en_BZ, en_FM, en_PW: dd/MM/y), whatever older lists say.
"""

from __future__ import annotations

MONTH_FIRST_REGIONS = frozenset({
    "US", "AS", "GU", "MP", "PR", "UM", "VI",   # the United States and its territories (en_US, en_PR, es_PR...)
    "PH",                                       # en_PH, fil_PH: M/d/yy
    "MH",                                       # en_MH: M/d/yy
    "PA",                                       # es_PA: MM/dd/yy
    "CA",                                       # chosen: see above
})


def month_first(region: str | None) -> bool:
    """True when an ambiguous numeric date from this region (ISO 3166 code) is month first."""
    return (region or "").strip().upper() in MONTH_FIRST_REGIONS
