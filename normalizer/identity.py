"""Canonical forms of the contact identities a complaint arrives with.

A citizen who writes twice, from the web form and later by e-mail or from a
social account, should be recognised as the same reporter.  Each function here
maps the many ways one identity is written to one canonical string (or None
when the text is not such an identity), so identities can be compared with
``==`` and used as keys.

E-mail
    Surrounding whitespace, ``<...>``, a display name (``Budi <budi@x.id>``)
    and a ``mailto:`` prefix are removed.  The domain is case-insensitive
    (RFC 1035 section 2.3.3) and is lower-cased and IDNA-encoded, so a Unicode
    domain and its ``xn--`` form are one address.  The local part is
    case-sensitive in principle (RFC 5321 section 2.4) but no mail provider
    in use treats it so, and citizens type it in any case, so it is
    lower-cased too.  Gmail's dots and ``+tag`` are deliberately *kept*:
    ignoring them is a Gmail rule, not an Internet one (other providers,
    including Indonesian ones, deliver ``a.b@`` and ``ab@`` to different
    people); a ``+tag`` may be how the citizen files our replies; and the
    address we answer must be the one the citizen gave us.  Recognising the
    citizen is another matter: ``email_mailbox`` gives the key of the mailbox
    an address delivers to, where Gmail's rule is applied to Gmail's own
    domains only (Google ignores dots in the local part and delivers
    ``name+tag@`` to ``name@``, and ``googlemail.com`` is ``gmail.com``; it
    lets no one register an address that differs from another only in dots),
    so ``budisantoso@gmail.com`` typed on the web form and
    ``budi.santoso@gmail.com`` in an e-mail's From are one reporter, and never
    two people's.  Shape checks are
    the RFC 5321 section 4.5.3.1 limits (local part <= 64, address <= 254
    octets) and a dot-atom local part (RFC 5322 section 3.4.1) without quoted
    strings, which no real reporter uses.

Twitter / X
    A username is 1-15 characters of ``A-Z a-z 0-9 _`` (X Help Center,
    "Help with username registration") and is case-insensitive, so it is
    lower-cased; ``@``, a profile URL on twitter.com / x.com and trailing
    path parts are removed.  The numeric user id (a 64-bit "snowflake", X API
    v2 docs) is the stable identity: it survives a change of username.

Telegram
    A username is 5-32 characters of ``a-z 0-9 _``, starts with a letter and
    does not end with ``_`` (Telegram FAQ, "What can I use as my username?"),
    and is case-insensitive; ``@``, ``t.me/``, ``telegram.me/`` and
    ``tg://resolve?domain=`` are removed.  A user id is a positive integer of
    at most 52 significant bits (Telegram Bot API, type ``User``, field
    ``id``); negative ids are groups and channels, not people.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "email_mailbox",
    "normalize_email",
    "normalize_telegram_user_id",
    "normalize_telegram_username",
    "normalize_twitter_handle",
    "normalize_twitter_user_id",
]

# RFC 5322 section 3.2.3 atext, the characters of an unquoted local part.
_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
# RFC 1035 / RFC 5890 LDH label: letters, digits, inner hyphens, 1-63 long.
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_TLD = re.compile(r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")
_DISPLAY_NAME = re.compile(r"^[^<>]*<([^<>]*)>\s*$")


def _idna_domain(domain: str) -> str | None:
    """ASCII (IDNA) form of a domain, lower-cased; None when it cannot be encoded."""
    try:
        # Python's built-in codec implements IDNA 2003 (RFC 3490), enough to
        # turn the rare Unicode domain into its xn-- form for comparison.
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None


def normalize_email(text: str) -> str | None:
    """Return the canonical (lower-case, IDNA domain) e-mail address, or None if not one."""
    value = unicodedata.normalize("NFKC", text).strip()
    named = _DISPLAY_NAME.match(value)
    if named:
        value = named.group(1).strip()
    value = value.strip("<>").strip()
    if value.lower().startswith("mailto:"):
        value = value[len("mailto:") :]
        value = value.split("?", 1)[0]  # RFC 6068: mailto:addr?subject=...
    # Sentence punctuation stuck to an address written in prose.
    value = value.rstrip(".,;:!?)").lstrip("(")
    if value.count("@") != 1:
        return None
    local, domain = value.rsplit("@", 1)
    local = local.lower()
    ascii_domain = _idna_domain(domain.rstrip("."))
    if ascii_domain is None or not _LOCAL.fullmatch(local) or len(local) > 64:
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    if not _TLD.fullmatch(labels[-1]):
        return None
    address = f"{local}@{ascii_domain}"
    return address if len(address) <= 254 else None


# Google's own domains, where dots in the local part and a "+tag" do not change the mailbox
# (Gmail Help: "Dots don't matter in Gmail addresses"; "+" aliases deliver to the same inbox).
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def email_mailbox(address: str) -> str:
    """The mailbox a canonical address (:func:`normalize_email`) delivers to, as a lookup key.

    The same address for every domain but Gmail's, whose dots and ``+tag`` are dropped
    (``Budi.Santoso+lapor@googlemail.com`` -> ``budisantoso@gmail.com``). Not for replies:
    those go to the address as the citizen gave it.
    """
    local, _, domain = address.rpartition("@")
    if domain not in _GMAIL_DOMAINS or not local:
        return address
    local = local.split("+", 1)[0].replace(".", "")
    return f"{local}@gmail.com" if local else address


_TWITTER_URL = re.compile(
    r"^(?:https?://)?(?:www\.|mobile\.)?(?:twitter|x)\.com/(?:#!/)?([^/?#\s]+)", re.I
)
_TWITTER_NAME = re.compile(r"[A-Za-z0-9_]{1,15}")
# Paths on twitter.com / x.com that are pages, not profiles.
_TWITTER_RESERVED = frozenset(
    {"home", "explore", "search", "i", "intent", "share", "settings", "messages", "hashtag"}
)


def normalize_twitter_handle(text: str) -> str | None:
    """Return the lower-case Twitter/X username without "@", or None if it is not one."""
    value = unicodedata.normalize("NFKC", text).strip()
    url = _TWITTER_URL.match(value)
    if url:
        value = url.group(1)
        if value.lower() in _TWITTER_RESERVED:
            return None
    value = value.removeprefix("@")
    if not _TWITTER_NAME.fullmatch(value):
        return None
    return value.lower()


# X API: user ids are unsigned 64-bit snowflakes written in decimal.
_MAX_TWITTER_ID = 2**64 - 1


def _positive_id(text: str | int, maximum: int) -> str | None:
    """Decimal string of a positive integer id no larger than ``maximum``, else None."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        return str(text) if 0 < text <= maximum else None
    value = unicodedata.normalize("NFKC", text).strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 20:
        return None
    number = int(value)
    return str(number) if 0 < number <= maximum else None


def normalize_twitter_user_id(text: str | int) -> str | None:
    """Return a Twitter/X numeric user id in decimal without leading zeros, or None."""
    return _positive_id(text, _MAX_TWITTER_ID)


_TELEGRAM_PREFIX = re.compile(
    r"^(?:(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me|telegram\.dog)/|tg://resolve\?domain=|@)",
    re.I,
)
_TELEGRAM_NAME = re.compile(r"[a-z][a-z0-9_]{3,30}[a-z0-9]")
# Telegram Bot API, User.id: "at most 52 significant bits".
_MAX_TELEGRAM_ID = 2**52 - 1


def normalize_telegram_username(text: str) -> str | None:
    """Return the lower-case Telegram username without "@" / t.me prefix, or None."""
    value = unicodedata.normalize("NFKC", text).strip()
    value = _TELEGRAM_PREFIX.sub("", value, count=1)
    value = re.split(r"[/?&#\s]", value, maxsplit=1)[0].lower()
    return value if _TELEGRAM_NAME.fullmatch(value) else None


def normalize_telegram_user_id(text: str | int) -> str | None:
    """Return a Telegram user id (positive, at most 52 bits) in decimal, or None."""
    return _positive_id(text, _MAX_TELEGRAM_ID)
