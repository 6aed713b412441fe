"""Settings of the SMS channel, until they have a section in :mod:`gateway.settings`.

A frozen dataclass with defaults, so the channel can be built and tested on its own. The
composition root passes one in; nothing here reads the environment or a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

# Leading region keywords a citizen may type before the message ("JABAR jalan rusak ...") and
# the province code (Kemendagri, the NIK's first two digits) each stands for. Operators replace
# the table with their own keywords (``sms.regions``; none may hold a command word of the
# grammar, ``grammar.COMMAND_WORDS``: refused at start); matching ignores case.
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
        "MALUKU UTARA": "82",
        "PAPUA": "91",
        "PAPBAR": "92",
        "PAPUA BARAT": "92",
        # The provinces of 2022 (UU 14, 15, 16 and 29 Tahun 2022; normalizer/data/regions.csv).
        # The longest keyword is matched first: "Papua Barat Daya" is not "Papua Barat".
        "PAPUA SELATAN": "93",
        "PAPUA TENGAH": "94",
        "PAPUA PEGUNUNGAN": "95",
        "PAPUA BARAT DAYA": "96",
    }
)


ReplyMode = Literal["auto", "outbox", "body"]
Coding0 = Literal["gsm", "latin1"]


@dataclass(frozen=True, slots=True)
class SmsSettings:
    """What the SMS channel needs to know (every key is explained in ``config/gateway.toml``).

    Inbound authentication, one secret per bridge (``None`` for Kannel turns its check off;
    the other bridges refuse every request until theirs is set): ``kannel_token`` (``token``
    query parameter of smsbox's get-url, or the basic-auth password), ``jasmin_token``
    (``token`` query parameter in the Jasmin connector's baseurl), ``modem_secret`` (the Android
    app's webhook signing key, or SMSSync's secret), ``gammu_token`` (the basic-auth password
    Gammu SMSD's ``lapor-onreceive`` program presents).

    Replies: ``reply_mode`` ``auto`` sends Kannel replies through the durable outbox and
    smsbox ``sendsms`` when ``kannel_sendsms_url`` is set, in the HTTP answer otherwise;
    ``outbox`` / ``body`` force one. Jasmin and the Android app always go through the outbox
    (``jasmin_send_url``, ``android_send_url``); SMSSync and Gammu replies ride on the HTTP
    answer.
    ``callback_url`` is how Kannel and Jasmin reach the gateway for delivery reports.
    """

    kannel_token: str | None = None
    short_code: str = "1708"
    regions: Mapping[str, str] = field(default_factory=lambda: DEFAULT_REGIONS)
    default_region: str = "ID"
    reply_mode: ReplyMode = "auto"
    callback_url: str | None = None
    kannel_sendsms_url: str | None = None
    kannel_sendsms_username: str = "lapor"
    kannel_sendsms_password: str | None = None
    kannel_dlr_mask: int = 31
    jasmin_token: str | None = None
    jasmin_send_url: str | None = None
    jasmin_username: str = "lapor"
    jasmin_password: str | None = None
    jasmin_coding0: Coding0 = "gsm"
    modem_secret: str | None = None
    gammu_token: str | None = None
    android_send_url: str | None = None
    android_username: str = ""
    modem_password: str | None = None
    flood_max_replies: int = 5
    flood_window: float = 3600.0
    fragment_timeout: float = 3600.0  # 2 x Kannel's combine timeout: README, "Kannel"
    sender_batch_size: int = 50
    sender_poll_interval: float = 1.0
    sender_claim_timeout: float = 60.0
    sender_max_attempts: int = 0  # 0: no limit by count
    sender_give_up_after: float = 86400.0
    sender_backoff_initial: float = 2.0
    sender_backoff_max: float = 300.0
    send_timeout: float = 10.0

    @property
    def kannel_outbox(self) -> bool:
        """True when Kannel replies go through the outbox rather than the HTTP answer."""
        if self.reply_mode == "auto":
            return self.kannel_sendsms_url is not None
        return self.reply_mode == "outbox"

    def can_send(self, bridge: str) -> bool:
        """True when a sender is configured for replies through ``bridge``."""
        return {
            "kannel": self.kannel_sendsms_url is not None,
            "jasmin": self.jasmin_send_url is not None,
            "android": self.android_send_url is not None,
        }.get(bridge, False)
