"""Settings of the SMS channel, until they have a section in :mod:`gateway.settings`.

A frozen dataclass with defaults, so the channel can be built and tested on its own. The
composition root passes one in; nothing here reads the environment or a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# Leading region keywords a citizen may type before the message ("JABAR jalan rusak ...") and
# the province code (Kemendagri, the NIK's first two digits) each stands for. Operators replace
# the table with their own keywords; matching ignores case.
DEFAULT_REGIONS: Mapping[str, str] = MappingProxyType(
    {
        "ACEH": "11",
        "SUMUT": "12",
        "SUMBAR": "13",
        "RIAU": "14",
        "JAMBI": "15",
        "SUMSEL": "16",
        "BENGKULU": "17",
        "LAMPUNG": "18",
        "BABEL": "19",
        "KEPRI": "21",
        "DKI": "31",
        "JAKARTA": "31",
        "JABAR": "32",
        "JATENG": "33",
        "DIY": "34",
        "JATIM": "35",
        "BANTEN": "36",
        "BALI": "51",
        "NTB": "52",
        "NTT": "53",
        "KALBAR": "61",
        "KALTENG": "62",
        "KALSEL": "63",
        "KALTIM": "64",
        "KALTARA": "65",
        "SULUT": "71",
        "SULTENG": "72",
        "SULSEL": "73",
        "SULTRA": "74",
        "GORONTALO": "75",
        "SULBAR": "76",
        "MALUKU": "81",
        "MALUT": "82",
        "PAPUA": "91",
        "PAPBAR": "92",
    }
)


@dataclass(frozen=True, slots=True)
class SmsSettings:
    """What the SMS channel needs to know.

    ``kannel_token``: shared secret smsbox must present (``token`` query parameter of its
    ``get-url``, or the password of HTTP basic auth); ``None`` turns the check off.
    ``short_code``: the number citizens send to, quoted in replies (at most 12 characters).
    ``regions``: leading region keyword -> region code.
    ``default_region``: the country whose numbering plan reads a sender without ``+``.
    """

    kannel_token: str | None = None
    short_code: str = "1708"
    regions: Mapping[str, str] = field(default_factory=lambda: DEFAULT_REGIONS)
    default_region: str = "ID"
