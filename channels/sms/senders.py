"""Sending queued replies through the bridge each MO came in on (transport, IO).

:class:`ReplySender` is the reply outbox's relay: it leases due pending rows
(:meth:`~channels.sms.ports.ReplyOutbox.claim`), sends each through its bridge's client, and marks
it sent (with the bridge's message id, for delivery reports) or failed (another attempt after an
exponential back-off, ``sender_backoff_initial`` doubling up to ``sender_backoff_max``; given up
once ``sender_give_up_after`` old, after ``sender_max_attempts`` when set, or on a refusal that
will not change). It also joins fragment sets
that waited longer than ``fragment_timeout``.

Once: a row is sent by one sender at a time (the lease), marked sent right after the bridge
accepted it, and never queued twice for one MO (``UNIQUE(raw_inbound_id)``). A process killed in
the instant between the bridge's "accepted" and the UPDATE leaves a lease that expires, and the
reply goes out again: at-least-once in that window (the Android app deduplicates on the id we
give the message, so there it stays once).

Bridge clients (each answers the bridge's message id, raises :class:`SendFailed`):

- Kannel smsbox ``sendsms``: ``GET <kannel_sendsms_url>?username&password&from&to&text&charset=
  UTF-8&coding=0&smsc=<MO's smsc-id>&dlr-mask=31&dlr-url=<callback>/sms/kannel/dlr?reply=<id>&
  type=%d&smsc_reply=%A``; ``202 0: Accepted for delivery`` (or ``3: Queued for later
  delivery``).
- Jasmin ``/send``: ``POST username&password&to&from&content&coding=0&dlr=yes&dlr-url=
  <callback>/sms/jasmin/dlr?reply=<id>&dlr-level=3&dlr-method=POST``;
  ``200 Success "<message id>"``.
- SMS Gateway for Android: ``POST <android_send_url>`` (basic auth) JSON ``{"id": "lapor-<id>",
  "textMessage": {"text": ...}, "phoneNumbers": [...], "withDeliveryReport": true,
  "simNumber": <the MO's SIM>}``; ``2xx``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Protocol
from urllib.parse import quote, urlencode

import aiohttp

from channels.sms import android, jasmin
from channels.sms.message import Bridge
from channels.sms.metrics import SmsMetrics
from channels.sms.ports import ClaimedReply, ReplyOutbox
from channels.sms.service import SmsService
from channels.sms.settings import SmsSettings
from gateway.ids import worker_name
from gateway.intake import Clock, utcnow

log = logging.getLogger(__name__)

KANNEL_DLR_PATH = "/sms/kannel/dlr"
# First pause before recording a sent reply again (doubling, at most 5 s).
MARK_SENT_FIRST_DELAY = 0.2
JASMIN_DLR_PATH = "/sms/jasmin/dlr"


class SendFailed(Exception):
    """A bridge did not take a reply; ``permanent`` when trying again cannot help."""

    def __init__(self, detail: str, permanent: bool = False) -> None:
        super().__init__(detail)
        self.permanent = permanent


class BridgeClient(Protocol):
    """Sends one reply; returns the bridge's message id (if it gives one)."""

    async def send(self, session: aiohttp.ClientSession, reply: ClaimedReply) -> str | None:
        """Hand ``reply`` to the bridge or raise :class:`SendFailed`."""


def _status_failure(status: int, body: str) -> SendFailed:
    # 400 / 404 / 422: the request itself is wrong and will stay wrong.
    return SendFailed(f"HTTP {status}: {body.strip()[:200]}", permanent=status in (400, 404, 422))


class KannelSendsms:
    """smsbox ``/cgi-bin/sendsms`` with a ``sendsms-user``."""

    def __init__(self, settings: SmsSettings) -> None:
        assert settings.kannel_sendsms_url is not None
        self._url = settings.kannel_sendsms_url
        self._settings = settings

    def query(self, reply: ClaimedReply) -> str:
        """The sendsms query string for ``reply`` (exposed for the README and the tests)."""
        s = self._settings
        params: dict[str, str] = {
            "username": s.kannel_sendsms_username,
            "password": s.kannel_sendsms_password or "",
            "from": reply.service_number or s.short_code,
            "to": reply.recipient,
            "text": reply.body,
            "charset": "UTF-8",
            "coding": "0",
        }
        if reply.smsc:
            params["smsc"] = reply.smsc  # answer through the link the MO came in on
        if s.callback_url and s.kannel_dlr_mask:
            # %A: the SMSC's own words (its DLR text, or the NACK and its error code), kept
            # as the report's detail: why a reply was not delivered.
            dlr = (
                f"{s.callback_url.rstrip('/')}{KANNEL_DLR_PATH}"
                f"?reply={reply.id}&type=%d&smsc_reply=%A"
            )
            if s.kannel_token:
                dlr += f"&token={quote(s.kannel_token, safe='')}"
            params["dlr-mask"] = str(s.kannel_dlr_mask)
            params["dlr-url"] = dlr
        return urlencode(params, quote_via=quote)

    async def send(self, session: aiohttp.ClientSession, reply: ClaimedReply) -> str | None:
        """GET sendsms; 202 (or 200) with ``0:`` / ``3:`` is taken."""
        sep = "&" if "?" in self._url else "?"
        async with session.get(f"{self._url}{sep}{self.query(reply)}") as resp:
            body = await resp.text(errors="replace")
            if resp.status in (200, 202) and body.lstrip()[:2] in ("0:", "3:"):
                return None
            raise _status_failure(resp.status, body)


class JasminSend:
    """Jasmin HTTP API ``/send``."""

    def __init__(self, settings: SmsSettings) -> None:
        assert settings.jasmin_send_url is not None
        self._url = settings.jasmin_send_url
        self._settings = settings

    def form(self, reply: ClaimedReply) -> dict[str, str]:
        """The form posted to ``/send`` for ``reply``."""
        s = self._settings
        data = {
            "username": s.jasmin_username,
            "password": s.jasmin_password or "",
            "to": reply.recipient,
            "from": reply.service_number or s.short_code,
            "content": reply.body,
            "coding": "0",
        }
        if s.callback_url:
            # Our reply id rides in the URL (Jasmin POSTs to it as given, its fields in the
            # body): a level-1 report can come before ``/send``'s answer is stored.
            dlr = f"{s.callback_url.rstrip('/')}{JASMIN_DLR_PATH}?reply={reply.id}"
            if s.jasmin_token:
                dlr += f"&token={quote(s.jasmin_token, safe='')}"
            data |= {"dlr": "yes", "dlr-url": dlr, "dlr-level": "3", "dlr-method": "POST"}
        return data

    async def send(self, session: aiohttp.ClientSession, reply: ClaimedReply) -> str | None:
        """POST the form; ``Success "<id>"`` is taken, the id kept for the DLR."""
        async with session.post(self._url, data=self.form(reply)) as resp:
            body = await resp.text(errors="replace")
            try:
                return jasmin.send_result(resp.status, body)
            except ValueError as exc:
                raise (
                    _status_failure(resp.status, body)
                    if resp.status != 200
                    else SendFailed(str(exc))
                ) from None


class AndroidSend:
    """SMS Gateway for Android: ``POST /messages`` (cloud, private server or the phone itself)."""

    def __init__(self, settings: SmsSettings) -> None:
        assert settings.android_send_url is not None
        self._url = settings.android_send_url
        credentials = f"{settings.android_username}:{settings.modem_password or ''}"
        self._headers = {
            "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()
        }

    @staticmethod
    def document(reply: ClaimedReply) -> dict[str, object]:
        """The JSON posted for ``reply``; the id makes a repeated post harmless. The reply
        leaves through the SIM the MO came in on (``simNumber``, 1-based, as in the MO's
        webhook): on a dual-SIM phone the app's own choice (its default SIM, round robin)
        would answer from another number, often another operator's."""
        doc: dict[str, object] = {
            "id": android.reply_message_id(reply.id),
            "textMessage": {"text": reply.body},
            "phoneNumbers": [reply.recipient],
            "withDeliveryReport": True,
        }
        sim = android.sim_number(reply.smsc)
        if sim is not None:
            doc["simNumber"] = sim
        return doc

    async def send(self, session: aiohttp.ClientSession, reply: ClaimedReply) -> str | None:
        """POST the message; any 2xx is taken (409: the app already has this id)."""
        async with session.post(
            self._url, json=self.document(reply), headers=self._headers
        ) as resp:
            body = await resp.text(errors="replace")
            if 200 <= resp.status < 300 or resp.status == 409:
                return android.reply_message_id(reply.id)
            raise _status_failure(resp.status, body)


def clients(settings: SmsSettings) -> dict[Bridge, BridgeClient]:
    """A client for every bridge whose send URL is configured."""
    out: dict[Bridge, BridgeClient] = {}
    if settings.kannel_sendsms_url:
        out[Bridge.KANNEL] = KannelSendsms(settings)
    if settings.jasmin_send_url:
        out[Bridge.JASMIN] = JasminSend(settings)
    if settings.android_send_url:
        out[Bridge.ANDROID] = AndroidSend(settings)
    return out


class ReplySender:
    """Sends pending replies; one per replica, they share the outbox through leases."""

    def __init__(
        self,
        outbox: ReplyOutbox,
        service: SmsService,
        bridges: Mapping[Bridge, BridgeClient],
        settings: SmsSettings,
        metrics: SmsMetrics | None = None,
        clock: Clock = utcnow,
        name: str | None = None,
    ) -> None:
        self._outbox = outbox
        self._service = service
        self._bridges = dict(bridges)
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self.name = name or worker_name("sms")
        self._wakeup = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self.last_error: str | None = None

    def wake(self) -> None:
        """Look at the outbox now (a reply was just queued in this process)."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set; join timed-out fragment sets now and then."""
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        delay = self._settings.sender_poll_interval
        try:
            while not stop.is_set():
                try:
                    sent = await self.send_batch()
                    if loop.time() >= next_sweep:
                        next_sweep = loop.time() + max(
                            1.0, min(60.0, self._settings.fragment_timeout / 10)
                        )
                        await self._service.sweep()
                    self.last_error = None
                    delay = self._settings.sender_poll_interval
                except Exception as exc:  # the database or a bug: keep the loop alive
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("SMS reply sender failed, retrying", exc_info=True)
                    sent = 0
                    delay = min(delay * 2, self._settings.sender_backoff_max)
                if sent == 0:
                    await _wait_any(stop, self._wakeup, delay)
                    self._wakeup.clear()
        finally:
            await self.close()

    async def close(self) -> None:
        """Release the HTTP connections."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._settings.send_timeout),
                connector=aiohttp.TCPConnector(limit=self._settings.sender_batch_size),
            )
        return self._session

    async def send_batch(self) -> int:
        """Claim due replies, send them concurrently, record each outcome; how many went."""
        if not self._bridges:
            return 0
        # The leases run from here: recording a sent reply is retried within them only.
        give_up = asyncio.get_running_loop().time() + self._settings.sender_claim_timeout / 2
        rows = await self._outbox.claim(
            self._bridges,
            self._settings.sender_batch_size,
            self._settings.sender_claim_timeout,
            self.name,
        )
        if not rows:
            return 0
        results = await asyncio.gather(*(self._send_one(r, give_up) for r in rows))
        return sum(results)

    async def _send_one(self, reply: ClaimedReply, give_up: float) -> int:
        client = self._bridges[reply.bridge]
        try:
            ref = await client.send(self._http(), reply)
        except (SendFailed, aiohttp.ClientError, TimeoutError, OSError) as exc:
            permanent = isinstance(exc, SendFailed) and exc.permanent
            error = f"{type(exc).__name__}: {exc}"
            retry_at = None
            cfg = self._settings
            counted_out = 0 < cfg.sender_max_attempts <= reply.attempts
            if not permanent and not counted_out:
                # 2 ** attempts grows past any float after ~1 000 attempts: capped first.
                doublings = min(reply.attempts - 1, 32)
                backoff = min(cfg.sender_backoff_initial * 2**doublings, cfg.sender_backoff_max)
                retry_at = self._clock() + timedelta(seconds=backoff)
                if retry_at > reply.created_at + timedelta(seconds=cfg.sender_give_up_after):
                    retry_at = None  # too late to be of use: given up
            await self._outbox.mark_failed(reply.id, self.name, error, retry_at)
            self._count(reply.bridge, "retry" if retry_at else "failed")
            log.warning(
                "reply not sent: %s",
                error[:300],
                extra={
                    "reply_id": reply.id,
                    "bridge": reply.bridge.value,
                    "attempt": reply.attempts,
                },
            )
            return 0
        await self._mark_sent(reply, ref, give_up)
        self._count(reply.bridge, "sent")
        if self._metrics is not None:
            self._metrics.reply_latency.observe((self._clock() - reply.created_at).total_seconds())
        return 1

    async def _mark_sent(self, reply: ClaimedReply, ref: str | None, give_up: float) -> None:
        """Record a reply the bridge took, retrying a failing database while the lease lasts.

        A reply left claimed goes out again when its lease runs out: the citizen would get
        it twice. Past ``give_up`` (the loop's time half a lease after the claim: the send has
        used part of it) the error is raised, and that is what happens; a retry later could
        find the reply claimed by another sender, and sent again, already.
        """
        loop = asyncio.get_running_loop()
        delay = MARK_SENT_FIRST_DELAY
        while True:
            try:
                await self._outbox.mark_sent(reply.id, self.name, ref)
                return
            except Exception as exc:  # the database: the reply is out, try to record it
                if loop.time() + delay >= give_up:
                    raise
                log.warning(
                    "reply sent but not recorded, retrying: %s",
                    type(exc).__name__,
                    extra={"reply_id": reply.id, "bridge": reply.bridge.value},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _count(self, bridge: Bridge, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.replies.labels(bridge.value, outcome).inc()


async def _wait_any(stop: asyncio.Event, wakeup: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wakeup.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
