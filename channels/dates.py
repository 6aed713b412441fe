"""Indonesian time for the channels: the calendar day against which "not in the future" is
judged, and WIB, the time of the national service in which the gateway shows times to citizens.

Indonesia spans three time zones: WIB (UTC+7), WITA (UTC+8) and WIT (UTC+9). A date a citizen
picks is a date where they are, so the latest date anyone in Indonesia can call "today" is the
date in the easternmost zone, WIT (Asia/Jayapura, UTC+9, no daylight saving time). Judged by the
UTC date instead, a citizen in Jakarta who picks today's date between 00:00 and 07:00 WIB would
be told that it lies in the future. Pure.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def _easternmost() -> tzinfo:
    try:
        return ZoneInfo("Asia/Jayapura")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # No time zone database on this machine: WIT has been UTC+9, without DST, since 1964.
        return timezone(timedelta(hours=9), "WIT")


EASTERNMOST = _easternmost()
# The national service's time (the status pages show times in it, as the SMS replies do).
WIB = timezone(timedelta(hours=7), "WIB")


def latest_today(now: datetime) -> date:
    """Today's date in Indonesia's easternmost time zone (WIT) at the instant ``now``: no date
    a citizen anywhere in Indonesia calls today is later. A naive ``now`` is taken as UTC."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(EASTERNMOST).date()
