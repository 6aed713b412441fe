"""Settings: one documented TOML file, overridden by ``LAPOR_...`` environment variables.

``config/gateway.toml`` holds the defaults and explains every key. An environment variable
``LAPOR_<SECTION>__<KEY>`` overrides ``[section] key`` (``LAPOR_HTTP__PORT=9000``); the file to
read is ``LAPOR_CONFIG`` (default: ``./config/gateway.toml`` in the working directory; without
it the documented defaults apply). Lists and tables are given as JSON
(``LAPOR_WEB__TRUSTED_PROXIES='["10.0.0.0/8"]'``); every other value is taken as it is. Secrets
(passwords, keys) are read only from the environment: a secret key found in the file, or a
password or token inside a URL in the file (its user info, or a query parameter such as
``password=`` or ``token=``), fails at start; a secret set to the empty string counts as unset.
Invalid settings raise :class:`~gateway.errors.ConfigError` naming the key; ``check-config``
prints :meth:`Settings.masked`, where those secrets, and the ones in a URL from the environment,
are masked.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.errors import ConfigError

ENV_PREFIX = "LAPOR_"
# (section, key) pairs that may only come from the environment.
SECRET_KEYS = {
    ("sms", "kannel_token"),
    ("sms", "kannel_sendsms_password"),
    ("sms", "jasmin_token"),
    ("sms", "jasmin_password"),
    ("sms", "modem_secret"),
    ("sms", "modem_password"),
    ("sms", "gammu_token"),
    ("database", "password"),
    ("broker", "password"),
    ("storage", "fetch_token"),
    ("http", "metrics_token"),
    ("security", "identity_key"),
    ("security", "data_key"),
    ("security", "previous_data_keys"),
    ("web", "csrf_key"),
    ("web", "open311_api_key"),
}
# Query parameters of a URL that carry a secret (a Kannel or Jasmin ``sendsms`` URL written with
# ``password=``, asyncpg's ``?password=``, a ``token=``): refused in the file, masked when shown.
# Compared lower-case without "-" and "_"; a name ending in password, token or secret counts
# too (a path such as PostgreSQL's sslkey= does not).
_SECRET_PARAMS = ("password", "passwd", "pass", "pwd", "pw", "token", "secret", "key", "apikey",
                  "accesskey", "secretkey", "authkey", "auth", "signature", "sig", "credential",
                  "credentials")
MASK = "********"


class _Section(BaseModel):
    # No "inf" or "nan" (TOML floats, or the strings in the environment): a timeout that never
    # ends, a back-off that sleeps for ever; refused at start, naming the key.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _not_empty(value: Any) -> Any:
    """An empty (or blank) path or host is refused: ``Path("")`` is the working directory, an
    empty host every interface, neither what a blank ``LAPOR_...=`` in a compose file meant."""
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


# A directory setting: never empty.
_Dir = Annotated[Path, BeforeValidator(_not_empty)]


def _public_url(value: str | None) -> str | None:
    """A public address of the gateway (``https://lapor.example.go.id``), without its final "/".

    A user or password is refused: check-config prints it, and it goes out to citizens (a
    receipt's QR code) and partners (Open311 discovery)."""
    if value is None:
        return None
    parts = urlsplit(value)
    bad = parts.scheme not in ("http", "https") or not parts.netloc or parts.query
    if bad or "@" in parts.netloc:
        raise ValueError("must be an http:// or https:// URL without a query or a password")
    return _parsable(value).rstrip("/")


def _listen_host(value: str) -> str:
    """An address to listen on: a host name or an IP address, nothing around it. "0.0.0.0:8080"
    or "http://0.0.0.0" were taken and ``serve`` then stopped on "Name or service not known",
    naming no setting."""
    if ":" in value:
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            raise ValueError(
                "must be a host name or an IP address, without a scheme, brackets or a port"
                " (the port is http.port)"
            ) from None
    elif any(c.isspace() or c in "/@[]" for c in value):
        raise ValueError("must be a host name or an IP address, without a scheme or a path")
    return value


class HttpSettings(_Section):
    # Never empty: asyncio listens on every interface for "" (write 0.0.0.0 or :: for that).
    host: Annotated[str, BeforeValidator(_not_empty), AfterValidator(_listen_host)] = "127.0.0.1"
    # 0 is refused: the system would pick a free port that no load balancer or probe knows.
    port: int = Field(8080, ge=1, le=65535)
    client_max_size: int = Field(10 * 1024 * 1024, gt=0)
    # The event loop every command runs on: uvloop (libuv), or Python's own asyncio loop.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # When set, /metrics answers only "Authorization: Bearer <metrics_token>" (a secret).
    metrics_token: SecretStr | None = None


class DatabaseSettings(_Section):
    url: str = "sqlite+aiosqlite:///var/lapor.db"
    password: SecretStr | None = None
    pool_size: int = Field(10, ge=1)
    connect_timeout: float = Field(5.0, gt=0)
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return _parsable(value)

    def effective_url(self) -> str:
        """The URL with the password from the environment put in."""
        return _with_password(self.url, self.password)

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite database."""
        return self.url.startswith("sqlite")


class StorageSettings(_Section):
    file_store: _Dir = Path("var/files")
    inline_body_limit: int = Field(64 * 1024, ge=0)
    fetch_token: SecretStr | None = None
    gc_interval: float = Field(86400.0, ge=0)
    gc_grace: float = Field(86400.0, ge=3600)


class BrokerSettings(_Section):
    url: str = "amqp://guest@127.0.0.1:5672/"
    password: SecretStr | None = None
    exchange: str = Field("lapor.intake", min_length=1)
    queue: str = Field("lapor.routing-core", min_length=1)
    dead_letter_exchange: str = Field("lapor.intake.dlx", min_length=1)
    dead_letter_queue: str = Field("lapor.routing-core.dead", min_length=1)
    declare_queue: bool = True
    connect_timeout: float = Field(5.0, gt=0)

    @field_validator("url")
    @classmethod
    def _amqp(cls, value: str) -> str:
        if not value.startswith(("amqp://", "amqps://")):
            raise ValueError("must start with amqp:// or amqps://")
        return _parsable(value)

    def effective_url(self) -> str:
        """The URL with the password from the environment put in."""
        return _with_password(self.url, self.password)


class OutboxSettings(_Section):
    enabled: bool = True
    batch_size: int = Field(200, ge=1, le=5000)
    poll_interval: float = Field(0.2, gt=0)
    handoff: bool = True
    claim_timeout: float = Field(60.0, gt=0)
    backoff_initial: float = Field(0.5, gt=0)
    backoff_max: float = Field(30.0, gt=0)
    ready_max_lag: float = Field(300.0, gt=0)
    relay_port: int = Field(8081, ge=1, le=65535)
    # Published events are kept this many seconds (how far back ``outbox republish`` reaches),
    # then deleted by ``serve`` every prune_interval seconds; 0: kept for ever / never pruned.
    keep_published: float = Field(90 * 86400.0, ge=0)
    prune_interval: float = Field(86400.0, ge=0)


class StatusFeedSettings(_Section):
    enabled: bool = True
    exchange: str = Field("lapor.status", min_length=1)
    queue: str = Field("lapor.gateway.status", min_length=1)
    dead_letter_exchange: str = Field("lapor.status.dlx", min_length=1)
    dead_letter_queue: str = Field("lapor.gateway.status.dead", min_length=1)
    prefetch: int = Field(10, ge=1, le=10000)
    backoff_initial: float = Field(0.5, gt=0)
    backoff_max: float = Field(30.0, gt=0)


class SecuritySettings(_Section):
    # Both keys: 32 random bytes, base64 (``python -c "import os,base64;
    # print(base64.b64encode(os.urandom(32)).decode())"``). Secrets: environment only.
    identity_key: SecretStr | None = None
    data_key: SecretStr | None = None
    # Data keys replaced by ``data_key``, still opened (never used to seal): a JSON list.
    previous_data_keys: list[SecretStr] = []
    # Where the embedded default keeps generated keys when none are set (SQLite only).
    generated_keys_dir: _Dir = Path("var/secrets")


class DedupSettings(_Section):
    enabled: bool = True
    window_days: float = Field(14.0, gt=0)
    retry_window_seconds: float = Field(600.0, ge=0)
    similarity_threshold: float = Field(0.45, gt=0, le=1)
    max_candidates: int = Field(50, ge=1, le=1000)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


class WebSettings(_Section):
    # Key of the citizen form's CSRF tokens (HMAC-SHA256). Secret: environment only. Unset, each
    # process draws a random one (embedded default, one machine) and warns in the log.
    csrf_key: SecretStr | None = None
    csrf_max_age: float = Field(4 * 3600.0, gt=0)
    # Key Open311 GeoReport v2 clients send as api_key with POST requests.json. Secret.
    open311_api_key: SecretStr | None = None
    open311_jurisdiction: str = Field("lapor.go.id", min_length=1)
    open311_max_results: int = Field(1000, ge=1, le=10000)
    open311_default_days: int = Field(90, ge=1)
    max_attachments: int = Field(5, ge=0, le=50)
    max_attachment_size: int = Field(5 * 1024 * 1024, gt=0)
    max_field_size: int = Field(80 * 1024, gt=0)
    rate_limit_requests: int = Field(30, ge=0)
    rate_limit_window: float = Field(60.0, gt=0)
    # Submissions per identity (NIK, phone, e-mail, each counted by its keyed hash) per window.
    rate_limit_identity_requests: int = Field(10, ge=0)
    rate_limit_identity_window: float = Field(3600.0, gt=0)
    # Reverse proxies (addresses or networks) whose X-Forwarded-For names the client.
    trusted_proxies: tuple[IPvAnyNetwork, ...] = ()
    # Public address of the gateway that Open311 discovery names; empty: the request's own.
    public_base_url: str | None = None

    @field_validator("public_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return _public_url(value or None)


# The SMS short code: quoted in every reply ("kirim CEK ... ke 1708") and sent as the replies'
# sender number, so only what reads the same on every link (channels/sms/replies.py).
MAX_SHORT_CODE = 12


def _short_code(value: str) -> str:
    """The number citizens text: 1 to 12 ASCII letters or digits. "17 08" was taken and the
    replies quietly said 1708; a non-ASCII one (a full-width "１７０８") became the default."""
    if not (1 <= len(value) <= MAX_SHORT_CODE and value.isascii() and value.isalnum()):
        raise ValueError(
            f"must be 1 to {MAX_SHORT_CODE} ASCII letters or digits, nothing else (no space or"
            " sign): the number citizens text, quoted in every reply"
        )
    return value


def _region_keywords(value: dict[str, str]) -> dict[str, str]:
    """Region keywords the SMS grammar can read before a message, none of them a command: the
    region keyword is read first, so a keyword "INFO" or "CEK" would hide that command."""
    if not value:
        return value  # the channel's built-in table
    # Imported here: the SMS channel's package imports modules that import this one.
    from channels.sms.grammar import COMMAND_WORDS, keyword_words

    for keyword in value:
        words = keyword_words(keyword)
        if not words:
            raise ValueError(f"region keyword {keyword!r} has no letter or digit: it never matches")
        commands = [w for w in words if w in COMMAND_WORDS]
        if commands:
            raise ValueError(
                f"region keyword {keyword!r} holds the SMS command {commands[0]}, which it would"
                f" hide (a region keyword is read first); the commands are"
                f" {', '.join(sorted(COMMAND_WORDS))}"
            )
    return value


def _region_code(value: str) -> str:
    """A region libphonenumber knows (``ID``, upper case taken too): any other two characters
    were taken, and every sender number written without "+" (0812..., as many SMSCs write it)
    was then filed with no phone number."""
    import phonenumbers  # the normalizer's library; here only for its list of regions

    code = value.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(
            f"{value!r} is not a region of libphonenumber's numbering plans: an ISO 3166 code"
            " such as ID"
        )
    return code


class SmsSettingsSection(_Section):
    kannel_token: SecretStr | None = None
    short_code: Annotated[str, AfterValidator(_short_code)] = "1708"
    # Leading region keyword -> region code; empty = the channel's built-in province table.
    regions: Annotated[dict[str, str], AfterValidator(_region_keywords)] = Field(
        default_factory=dict
    )
    default_region: Annotated[str, AfterValidator(_region_code)] = "ID"
    # Replies and the bridges (channels/sms/README.md; every key in config/gateway.toml).
    reply_mode: Literal["auto", "outbox", "body"] = "auto"
    callback_url: str | None = None
    kannel_sendsms_url: str | None = None
    kannel_sendsms_username: str = Field("lapor", min_length=1)
    kannel_sendsms_password: SecretStr | None = None
    kannel_dlr_mask: int = Field(31, ge=0, le=31)
    jasmin_token: SecretStr | None = None
    jasmin_send_url: str | None = None
    jasmin_username: str = Field("lapor", min_length=1)
    jasmin_password: SecretStr | None = None
    jasmin_coding0: Literal["gsm", "latin1"] = "gsm"
    modem_secret: SecretStr | None = None
    gammu_token: SecretStr | None = None
    android_send_url: str | None = None
    android_username: str = ""
    modem_password: SecretStr | None = None
    flood_max_replies: int = Field(5, ge=0)
    flood_window: float = Field(3600.0, gt=0)
    fragment_timeout: float = Field(3600.0, gt=0)
    sender_batch_size: int = Field(50, ge=1, le=1000)
    sender_poll_interval: float = Field(1.0, gt=0)
    sender_claim_timeout: float = Field(60.0, gt=0)
    sender_max_attempts: int = Field(0, ge=0)
    sender_give_up_after: float = Field(86400.0, gt=0)
    sender_backoff_initial: float = Field(2.0, gt=0)
    sender_backoff_max: float = Field(300.0, gt=0)
    send_timeout: float = Field(10.0, gt=0)
    # Retention (seconds; 0 keeps for ever): replies no longer pending, from when they were
    # queued; the parts of long messages, from when they were joined.
    keep_replies: float = Field(90 * 86400.0, ge=0)
    keep_fragments: float = Field(7 * 86400.0, ge=0)

    @field_validator("callback_url", "kannel_sendsms_url", "jasmin_send_url", "android_send_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("http://", "https://")) or urlsplit(value).password:
            raise ValueError("must be an http(s):// URL without a password")
        # A port that is not a number would fail every reply at send time, not here.
        return _parsable(value)


class LetterSettings(_Section):
    # The staff pages under /staff/ and the background reader of uploaded letters.
    enabled: bool = True
    # OCR of uploaded letters: worker processes, Tesseract language(s), lease of a letter being
    # read (another replica reads it again when the reader died), how often the reader looks for
    # letters left unread.
    ocr_workers: int = Field(2, ge=1, le=64)
    ocr_language: str = Field("ind", pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$")
    reading_lease: float = Field(300.0, gt=0)
    reader_poll_interval: float = Field(5.0, gt=0)
    # Upload limits: files per upload (a batch from the complaint box) and bytes per file.
    max_files: int = Field(50, ge=1, le=1000)
    max_file_size: int = Field(25 * 1024 * 1024, gt=0)
    # Staff sessions (random tokens kept in the database): absolute and idle lifetime, seconds.
    session_max_age: float = Field(10 * 3600.0, gt=0)
    session_idle_timeout: float = Field(3600.0, gt=0)
    cookie_secure: bool = False
    # Lockout: this many wrong passwords in a row lock the account for lockout_minutes.
    lockout_threshold: int = Field(5, ge=1, le=100)
    lockout_minutes: float = Field(15.0, gt=0)
    # Failed logins per client address: this many in login_address_window seconds refuse that
    # address's further attempts until the window ends (0 turns it off).
    login_address_failures: int = Field(20, ge=0)
    login_address_window: float = Field(900.0, gt=0)
    # New login forms (each stores a pre-login session) per address in that window (0: off).
    login_address_forms: int = Field(100, ge=0)
    min_password_length: int = Field(10, ge=8, le=128)
    # Public address of the gateway's citizen pages, for the receipt's QR code (/cek?id=...).
    public_base_url: str = "http://127.0.0.1:8080"

    @field_validator("public_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return _public_url(value)


class Settings(_Section):
    http: HttpSettings = HttpSettings()
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    broker: BrokerSettings = BrokerSettings()
    outbox: OutboxSettings = OutboxSettings()
    status_feed: StatusFeedSettings = StatusFeedSettings()
    security: SecuritySettings = SecuritySettings()
    dedup: DedupSettings = DedupSettings()
    logging: LoggingSettings = LoggingSettings()
    web: WebSettings = WebSettings()
    sms: SmsSettingsSection = SmsSettingsSection()
    letter: LetterSettings = LetterSettings()

    @model_validator(mode="after")
    def _backoff_starts_below_its_ceiling(self) -> Settings:
        # Every back-off doubles from ``*backoff_initial`` up to ``*backoff_max`` (the outbox
        # relay, the status feed, the SMS reply sender, any pair added later): a start above
        # the ceiling was taken, and the first pause was longer than the longest one.
        problems = []
        for section in type(self).model_fields:
            values = getattr(self, section)
            fields = type(values).model_fields
            for key in fields:
                ceiling = key.removesuffix("initial") + "max"
                if not key.endswith("backoff_initial") or ceiling not in fields:
                    continue
                start, top = getattr(values, key), getattr(values, ceiling)
                if start > top:
                    problems.append(
                        f"{section}.{key} ({start:g} s) is greater than {section}.{ceiling}"
                        f" ({top:g} s): the back-off would start above its ceiling; lower"
                        f" {section}.{key} or raise {section}.{ceiling}"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _replies_sent_within_their_lease(self) -> Settings:
        # A reply is leased from its claim: one still being sent, or recorded, when its lease
        # ends is claimed and sent again by another sender (channels/sms/README.md, "Once").
        sms = self.sms
        if sms.send_timeout * 2 > sms.sender_claim_timeout:
            raise ValueError(
                f"sms.send_timeout ({sms.send_timeout:g} s) is more than half of"
                f" sms.sender_claim_timeout ({sms.sender_claim_timeout:g} s): a reply still"
                " being sent when its lease ends would be sent again by another sender; lower"
                " sms.send_timeout or raise sms.sender_claim_timeout"
            )
        return self

    @model_validator(mode="after")
    def _grace_covers_kept_forms(self) -> Settings:
        # A refused form keeps its attachments for the citizen's next try, for as long as its
        # CSRF token lives: a shorter grace lets the file gc delete them before that try (and
        # the form then claims files that are gone). ``files gc --grace-hours`` only warns.
        if self.storage.gc_grace < self.web.csrf_max_age:
            raise ValueError(
                f"storage.gc_grace ({self.storage.gc_grace:g} s) is shorter than"
                f" web.csrf_max_age ({self.web.csrf_max_age:g} s): the file gc could delete the"
                " attachments a refused form keeps before the citizen sends it again;"
                " raise storage.gc_grace or lower web.csrf_max_age"
            )
        return self

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data with every secret masked."""
        data: dict[str, Any] = self.model_dump(mode="json")
        for section, key in SECRET_KEYS:
            value = data[section].get(key)
            if isinstance(value, list):
                data[section][key] = [MASK] * len(value)
            elif value is not None:
                data[section][key] = MASK
        # Every URL (database, broker, the SMS bridges' send and callback URLs): the password of
        # its user info and its secret query parameters (``sendsms?...&password=...``).
        for values in data.values():
            for key, value in values.items():
                if isinstance(value, str) and "://" in value:
                    values[key] = mask_url(value)
        return data


def _problem(err: Any, set_by: Mapping[tuple[str, str], str]) -> str:
    """One validation error as ``section.key: message``, with the variable that set the value
    when one did (the file shows another); a check across sections (no location) names its keys
    in its own message."""
    where = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":  # pydantic's "Extra inputs are not permitted"
        msg = "unknown setting (a typo? every key is in config/gateway.toml)"
    if not where:
        return msg.removeprefix("Value error, ")
    loc = err["loc"]
    variable = set_by.get((str(loc[0]), str(loc[1]))) if len(loc) > 1 else None
    return f"{where}: {msg}" + (f" (set by {variable})" if variable else "")


def _parsable(url: str) -> str:
    """``url`` when its host and port can be read: else every command would fall over with a
    traceback when it connects (``db:54x2``). The message never repeats the URL (a password)."""
    try:
        port = urlsplit(url).port  # raises for a port that is not a number in range
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    if port == 0:  # nothing is ever reached on port 0: a typo
        raise ValueError("not a valid URL (port 0)")
    return url


def _with_password(url: str, password: SecretStr | None) -> str:
    if password is None:
        return url
    parts = urlsplit(url)
    # The user as written (already URL-encoded), the host and port as written: an IPv6 address
    # keeps its brackets ("[::1]:5432"), which ``hostname`` drops.
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    netloc = f"{user}:{quote(password.get_secret_value(), safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def _secret_param(name: str) -> bool:
    """Whether a URL query parameter named ``name`` carries a secret."""
    plain = unquote_plus(name).lower().replace("-", "").replace("_", "")
    return plain in _SECRET_PARAMS or plain.endswith(("password", "token", "secret"))


def _url_secrets(url: str) -> list[str]:
    """The secrets ``url`` holds: "a password" (in its user info), its secret query parameters."""
    parts = urlsplit(url)
    found = ["a password"] if parts.password is not None else []
    for piece in parts.query.split("&"):
        name = piece.partition("=")[0]
        if name and _secret_param(name):
            found.append(f"{unquote_plus(name)}=")
    return found


def mask_url(url: str) -> str:
    """``url`` with the password of its user info and its secret query parameters masked."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL at all: shown as written
        return url
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{host}"
    query = "&".join(
        f"{piece.partition('=')[0]}={MASK}" if _secret_param(piece.partition("=")[0]) else piece
        for piece in parts.query.split("&")
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing secret: exactly as written
    if netloc == parts.netloc:
        # Only the query: spliced into the URL as written (urlunsplit would write an SQLite
        # URL's empty host away, and "sqlite+aiosqlite:////var/x.db" become "//var/x.db").
        head = url.partition("?")[0]
        return f"{head}?{query}" + (f"#{parts.fragment}" if parts.fragment else "")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    sections = Settings.model_fields
    out: dict[str, dict[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "LAPOR_CONFIG":
            continue
        section, sep, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if not sep or section not in sections:
            raise ConfigError(f"{name}: unknown setting (expected LAPOR_<SECTION>__<KEY>)")
        if key not in getattr(sections[section].annotation, "model_fields", {}):
            # Named by the variable: the key is in no file for the operator to find.
            raise ConfigError(
                f"{name}: unknown setting {section}.{key} (every key of [{section}] is in"
                " config/gateway.toml)"
            )
        if raw == "" and (section, key) in SECRET_KEYS:
            # An empty secret is an unset one (``LAPOR_WEB__CSRF_KEY=`` left blank in a
            # compose file): what the gateway does without it applies, never an empty key.
            continue
        value: Any = raw
        if raw and _structured(sections[section].annotation, key):
            # Lists and tables are written as JSON; any other value is taken as it is, even
            # one that starts with "[" or "{" (a password may).
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"{name}: not valid JSON ({exc.msg}); {section}.{key} is a list or table"
                ) from None
        out.setdefault(section, {})[key] = value
    return out


def _structured(section: Any, key: str) -> bool:
    """Whether ``section.key`` holds a list or table (given as JSON in the environment)."""
    fields = getattr(section, "model_fields", {})
    if key not in fields:
        return False  # unknown: validation refuses it, naming the key
    annotation = fields[key].annotation
    options = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else ()
    return any(
        (get_origin(a) or a) in (list, tuple, set, frozenset, dict)
        for a in (options or (annotation,))
    )


def _check_file_has_no_secrets(data: Mapping[str, Any], path: Path) -> None:
    for name, value in data.items():
        if name in Settings.model_fields and not isinstance(value, dict):
            # "database = ..." above the tables instead of "[database]".
            raise ConfigError(f"{name}: must be a table ([{name}]) in {path}")
    for section, key in SECRET_KEYS:
        if key in data.get(section, {}):
            env = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
            raise ConfigError(f"{section}.{key}: secrets come only from the environment ({env})")
    for section in ("database", "broker"):
        url = data.get(section, {}).get("url")
        if isinstance(url, str) and urlsplit(url).password:
            env = f"{ENV_PREFIX}{section.upper()}__PASSWORD"
            raise ConfigError(f"{section}.url in {path}: remove the password; set {env} instead")
    for section, values in data.items():
        for key, value in values.items() if isinstance(values, dict) else ():
            if not isinstance(value, str) or "://" not in value:
                continue
            try:
                found = _url_secrets(value)
            except ValueError:  # not a URL after all: validation names the key if it must
                continue
            if found:
                # Never the URL itself in the message: it holds the secret.
                raise ConfigError(
                    f"{section}.{key} in {path}: remove {', '.join(found)} from the URL; secrets"
                    " come only from the environment (the LAPOR_... variables config/gateway.toml"
                    " lists)"
                )


def config_path(environ: Mapping[str, str]) -> Path:
    """The settings file to read: ``LAPOR_CONFIG``, else ``config/gateway.toml`` in the working
    directory (when that does not exist, the documented defaults apply)."""
    return Path(environ.get("LAPOR_CONFIG", "config/gateway.toml"))


def load_settings(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Read the file, apply the environment and ``overrides``, validate; errors name the key."""
    environ = os.environ if environ is None else environ
    path = path or config_path(environ)
    data: dict[str, dict[str, Any]] = {}
    if path.exists():
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except OSError as exc:  # a directory, or not readable by this user
            raise ConfigError(f"LAPOR_CONFIG: {path} cannot be read ({exc.strerror})") from None
        _check_file_has_no_secrets(data, path)
    elif "LAPOR_CONFIG" in environ:
        raise ConfigError(f"LAPOR_CONFIG: {path} does not exist")
    from_env = _env_overrides(environ)
    overrides = overrides or {}
    set_by = {
        (section, key): f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
        for section, values in from_env.items()
        for key in values
        if key not in overrides.get(section, {})
    }
    for layer in (from_env, overrides):
        for section, values in layer.items():
            if not isinstance(data.setdefault(section, {}), dict):
                raise ConfigError(f"{section}: must be a table")
            data[section].update(values)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(err, set_by) for err in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from None
