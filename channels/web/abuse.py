"""Who is asking, and whether they may: the client address and the web channel's rate limits.

Two limits, both counted in the database by :class:`~gateway.ratelimit.RateLimiter` so every
replica shares them (``[web]`` settings):

- per client address: ``rate_limit_requests`` per ``rate_limit_window`` seconds;
- per identity: ``rate_limit_identity_requests`` per ``rate_limit_identity_window`` seconds for
  each NIK, phone number and e-mail address a submission carries, normalised like the intake
  does (so ``0812-3456-7890`` and ``+6281234567890`` are one person) and kept only as an HMAC
  under the identity key, in a domain of its own (``ratelimit-<kind>``), never in clear.

The client address is the TCP peer, unless the peer is one of ``trusted_proxies``: then it is the
right-most ``X-Forwarded-For`` address that is not itself a trusted proxy (each proxy appends the
address it received the request from, so the addresses left of the first untrusted one may have
been written by the client itself and are ignored).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable

from aiohttp import web

from gateway.crypto import Keys
from gateway.errors import IntakeUnavailable
from gateway.ratelimit import Decision, Limit, RateLimiter
from gateway.settings import WebSettings
from normalizer import email_mailbox, normalize_email, normalize_phone, parse_nik

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
Bucket = tuple[str, Limit]
CLIENT = web.RequestKey("lapor_client_address", str)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:51234"
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack listener ("::") sees an IPv4 peer as "::ffff:a.b.c.d": the same address,
    # which an IPv4 network in trusted_proxies must match and which must count as one bucket.
    mapped = addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) else None
    return mapped or addr


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Iterable[Network]
) -> str:
    """The client's address: the peer, or what trusted proxies say in X-Forwarded-For."""
    nets = tuple(trusted)
    current = _address(peer or "")
    if current is None:
        return peer or "unknown"

    def is_trusted(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(addr in net for net in nets)

    if not is_trusted(current):
        return str(current)
    hops = [h for header in forwarded_for for h in header.split(",") if h.strip()]
    for hop in reversed(hops):
        addr = _address(hop)
        if addr is None:
            break  # a garbled entry: trust nothing further left
        current = addr
        if not is_trusted(addr):
            break
    return str(current)


def _local_address(request: web.Request) -> str:
    """``host:port`` of the socket the request came in on (IPv6 in brackets)."""
    transport = request.transport
    sock = transport.get_extra_info("sockname") if transport is not None else None
    if not isinstance(sock, tuple) or len(sock) < 2:
        return "localhost"  # a Unix socket: no address to name
    addr = _address(str(sock[0]))
    host = f"[{addr}]" if isinstance(addr, ipaddress.IPv6Address) else str(addr or sock[0])
    return f"{host}:{sock[1]}"


def request_client(request: web.Request, trusted: tuple[Network, ...]) -> str:
    """:func:`client_address` of ``request``, worked out once per request."""
    found = request.get(CLIENT)
    if found is None:
        forwarded = request.headers.getall("X-Forwarded-For", [])
        found = request[CLIENT] = client_address(request.remote, forwarded, trusted)
    return found


class Guard:
    """The web channel's limits: per client address and per identity."""

    def __init__(self, limiter: RateLimiter, settings: WebSettings, keys: Keys) -> None:
        self._limiter = limiter
        self._keys = keys
        self._trusted = tuple(settings.trusted_proxies)
        self.per_address = Limit(settings.rate_limit_requests, settings.rate_limit_window)
        self.per_identity = Limit(
            settings.rate_limit_identity_requests, settings.rate_limit_identity_window
        )

    def client(self, request: web.Request) -> str:
        """The client's address (see the module's docstring), worked out once per request."""
        return request_client(request, self._trusted)

    def origin(self, request: web.Request) -> str:
        """``scheme://host`` the client used: a trusted proxy's X-Forwarded-Proto/-Host count.

        A Host header that is not a host name or address with an optional port (a path, a
        query, markup, nothing) is never repeated: the address the request came in on is named
        instead. A well-formed Host is still the client's word; an answer that names the
        gateway to others (Open311 discovery) uses the configured public address when it has
        one."""
        scheme, host = request.scheme, request.host
        if not _HOST.fullmatch(host):
            host = _local_address(request)
        peer = _address(request.remote or "")
        if peer is not None and any(peer in net for net in self._trusted):
            proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
            scheme = proto if proto in ("http", "https") else scheme
            forwarded = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
            host = forwarded if _HOST.fullmatch(forwarded) else host
        return f"{scheme}://{host}"

    def address_bucket(self, request: web.Request) -> Bucket:
        """The bucket of this request's client address."""
        return f"ip:{self.client(request)}", self.per_address

    def identity_buckets(
        self, nik: str | None, phone: str | None, email: str | None
    ) -> list[Bucket]:
        """One bucket per valid identity given, by its keyed hash."""
        found: list[tuple[str, str | None]] = []
        if nik:
            parsed = parse_nik(nik)
            found.append(("nik", parsed.nik if parsed.valid else None))
        if phone:
            found.append(("phone", normalize_phone(phone)))
        if email:
            # By the mailbox: a Gmail address written with dots or a +tag is one sender.
            address = normalize_email(email)
            found.append(("email", email_mailbox(address) if address else None))
        return [
            (f"id:{kind}:{self._keys.lookup_hash('ratelimit-' + kind, value)}", self.per_identity)
            for kind, value in found
            if value
        ]

    def idempotency_scope(
        self,
        request: web.Request,
        nik: str | None,
        phone: str | None,
        email: str | None,
        followed: str | None = None,
    ) -> str:
        """Whose an ``Idempotency-Key`` is: the reporter's identity (NIK, phone, e-mail, as
        the parser canonicalised them), or the client's address when the request names none;
        for a follow-up, the complaint it adds to (``followed``, the tracking ID whose code it
        carries: what stays the same when its app retries from another network).

        The API has no accounts, so two applications may well pick the same key (a counter,
        ``"1"``): global, the second one's citizen was refused (422) or got the first one's
        receipt. The identity is what stays the same when a citizen's phone retries from
        another network; an anonymous request has only its address. A keyed hash in a domain of
        its own (32 hex digits): the stored provider id holds no identity or address in clear.
        """
        given = [f"{kind}={value}" for kind, value in
                 (("nik", nik), ("phone", phone), ("email", email)) if value]
        if followed is not None:
            basis = f"followup={followed}"
        else:
            basis = ";".join(given) if given else f"ip={self.client(request)}"
        return self._keys.lookup_hash("idempotency", basis)[:32]

    async def check(self, buckets: Iterable[Bucket]) -> Decision:
        """Count this request in ``buckets`` (one statement); raises IntakeUnavailable (logged:
        the submission is answered 503 before it reaches the intake, which would log it)."""
        try:
            decision = await self._limiter.hit(buckets)
        except IntakeUnavailable as exc:
            log.warning("request not counted, answered 503: %s", str(exc)[:300])
            raise
        if not decision.allowed:
            log.info(
                "rate limited",
                extra={"bucket": decision.refused_by, "hits": decision.hits,
                       "limit": decision.limit},
            )
        return decision
