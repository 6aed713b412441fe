"""What every SMS bridge route does with an MO, after its own protocol checks.

1. The intake port stores the raw request, parses it and commits (``IntakeService.accept``).
2. A fragment (a part Kannel could not reassemble) is held; when its set is complete, or when
   ``fragment_timeout`` has passed (:meth:`SmsService.sweep`), the parts are joined into one
   message that goes through the intake port as ``sms.joined``.
3. The reply is chosen (receipt with the tracking ID, status, help, "empty", "checked by an
   officer") and written to the reply outbox keyed on the MO's raw inbound id, right after the
   receipt: a redelivered MO gets the same raw id back and so never a second reply. Flood
   control may suppress it. The route then answers with the reply in its body (Kannel body
   mode, SMSSync) or with nothing (the sender task sends it through the bridge).

When the database cannot commit, :class:`~gateway.errors.IntakeUnavailable` propagates and the
route answers its bridge's retry signal; the redelivered MO then finds its raw inbound row and
its reply row (or writes the reply it could not write the first time).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from channels.sms import fragments as joining
from channels.sms import grammar, replies
from channels.sms.message import Bridge, SmsMessage
from channels.sms.metrics import SmsMetrics
from channels.sms.parse import (
    JOINED_PARSER,
    PARSER_NAMES,
    bridge_parser,
    decode,
    interpret,
    interpret_joined,
    joined_parser,
)
from channels.sms.ports import FragmentBuffer, FragmentSet, NewReply, ReplyOutbox, ReplyStatus
from channels.sms.settings import SmsSettings
from gateway.domain import Channel, ParseOutcome, RawInbound, Receipt, ReceiptStatus
from gateway.errors import IntakeUnavailable, ParseError
from gateway.intake import Clock, IntakeService, Parser, utcnow
from normalizer import normalize_phone

log = logging.getLogger(__name__)

Reading = grammar.Interpretation | ParseError
_STORE_ERRORS = (SQLAlchemyError, OSError, TimeoutError, ConnectionError)


def parsers(settings: SmsSettings) -> tuple[Parser, ...]:
    """Every parser of the channel (the registry and the routes must share them)."""
    return (
        *(Parser(PARSER_NAMES[b], bridge_parser(b, settings)) for b in Bridge),
        Parser(JOINED_PARSER, joined_parser(settings)),
    )


@dataclass(frozen=True, slots=True)
class Answer:
    """What the route may put in its HTTP answer."""

    text: str  # the reply to send in the answer ('' for none)
    reply_id: int | None = None


def _read_once(
    read: Callable[[], grammar.Interpretation],
) -> tuple[Reading, ParseOutcome | ParseError | None]:
    """Read an MO once, for its reply and for the intake port (parsers are pure).

    A crash is not handed over (None): the intake port runs the parser itself and quarantines
    the message as a parser crash, and the citizen is told it will be checked by an officer.
    """
    try:
        interpretation = read()
    except ParseError as exc:
        return exc, exc
    except Exception as exc:
        return ParseError(f"{type(exc).__name__}: {exc}", "parser-crash"), None
    return interpretation, interpretation.outcome


class SmsService:
    """Intake, fragments and replies for every bridge."""

    def __init__(
        self,
        intake: IntakeService,
        settings: SmsSettings,
        outbox: ReplyOutbox | None = None,
        buffer: FragmentBuffer | None = None,
        metrics: SmsMetrics | None = None,
        clock: Clock = utcnow,
        on_reply: Callable[[], None] | None = None,
    ) -> None:
        self.intake = intake
        self.settings = settings
        self._outbox = outbox
        self._buffer = buffer
        self._metrics = metrics
        self._clock = clock
        self._on_reply = on_reply
        by_name = {p.name: p for p in parsers(settings)}
        self._parsers = {b: by_name[PARSER_NAMES[b]] for b in Bridge}
        self._joined = by_name[JOINED_PARSER]

    def sender_key(self, number: str) -> str:
        """The number in E.164 when it reads as one (flood control and fragments key on it)."""
        return normalize_phone(number, self.settings.default_region) or number.strip()

    async def receive(self, raw: RawInbound, bridge: Bridge, inline: bool) -> Answer:
        """Accept one MO of ``bridge`` and decide its reply (see the module docstring)."""
        message: SmsMessage | None = None

        def read() -> grammar.Interpretation:
            nonlocal message
            message = decode(bridge, raw.body, self.settings)
            return interpret(message, self.settings)

        # The bridge's parser is exactly decode + interpret: its outcome is handed over.
        reading, parsed = _read_once(read)
        receipt = await self.intake.accept(raw, self._parsers[bridge], parsed)
        if message is not None and message.fragment is not None and self._buffer is not None:
            if receipt.status is ReceiptStatus.RECORDED:
                return await self._hold(receipt, message, raw, inline)
        text, kind = await self._reply_text(receipt, reading)
        sender = message.sender if message is not None else raw.metadata.get("sender", "")
        return await self._answer(
            receipt, bridge, sender, raw.metadata, message, text, kind, inline
        )

    async def _hold(
        self, receipt: Receipt, message: SmsMessage, raw: RawInbound, inline: bool
    ) -> Answer:
        assert self._buffer is not None
        try:
            complete = await self._buffer.hold(
                receipt.raw_id, message, self.sender_key(message.sender), raw.received_at
            )
        except _STORE_ERRORS as exc:
            raise IntakeUnavailable(f"fragment not held: {exc}") from exc
        self._count_fragment("held")
        if complete is None:
            return Answer("")
        return await self.join(complete, inline)

    async def join(self, held: FragmentSet, inline: bool) -> Answer:
        """Join a held set (complete or timed out) into one message through the intake port."""
        assert self._buffer is not None
        joined = joining.join(held)
        received = min(p.received_at for p in held.parts)
        raw = RawInbound(
            channel=Channel.SMS,
            body=joined.body(),
            received_at=received,
            provider_message_id=joined.provider_id(),
            content_type=joining.CONTENT_TYPE,
            metadata={
                "bridge": joined.bridge.value,
                "sender": joined.sender,
                "receiver": joined.receiver,
                "parts": f"{len(joined.texts)}/{joined.total}",
            }
            | ({"smsc": joined.smsc} if joined.smsc else {}),
        )
        reading, parsed = _read_once(lambda: interpret_joined(raw, self.settings))
        receipt = await self.intake.accept(raw, self._joined, parsed)
        try:
            await self._buffer.close(held, receipt.raw_id)
        except _STORE_ERRORS as exc:
            raise IntakeUnavailable(f"fragments not closed: {exc}") from exc
        self._count_fragment("joined" if not joined.missing else "joined_incomplete")
        log.info(
            "joined %d of %d SMS parts",
            len(joined.texts),
            joined.total,
            extra={"raw_id": receipt.raw_id, "tracking_id": receipt.tracking_id},
        )
        text, kind = await self._reply_text(receipt, reading)
        return await self._answer(
            receipt, joined.bridge, joined.sender, raw.metadata, None, text, kind, inline
        )

    async def sweep(self) -> int:
        """Join every set whose first part is older than ``fragment_timeout``; how many."""
        if self._buffer is None:
            return 0
        cutoff = self._clock() - timedelta(seconds=self.settings.fragment_timeout)
        expired = await self._buffer.expired(cutoff)
        for held in expired:
            await self.join(held, inline=False)
        return len(expired)

    async def _reply_text(self, receipt: Receipt, reading: Reading) -> tuple[str, str]:
        code = self.settings.short_code
        if receipt.status is ReceiptStatus.QUARANTINED or isinstance(reading, ParseError):
            if isinstance(reading, ParseError) and reading.stage == "empty":
                return replies.empty(code), "empty"
            return replies.quarantined(receipt.tracking_id), "quarantined"
        if receipt.status in (ReceiptStatus.ACCEPTED, ReceiptStatus.DUPLICATE):
            tid = receipt.tracking_id
            if tid is None:
                return replies.quarantined(None), "quarantined"
            return replies.accepted(tid, code, reading.nik_rejected), "receipt"
        if reading.intent is grammar.Intent.HELP:
            return replies.help_text(code), "help"
        if reading.intent is grammar.Intent.STATUS:
            if reading.tracking_id is None:
                return replies.status_unknown(code), "status-unknown"
            found = await self.intake.status(reading.tracking_id)
            if found is None:
                return replies.status_unknown(code), "status-unknown"
            text = replies.status_found(found.tracking_id, found.status, found.received_at)
            return text, "status"
        return "", "none"  # a fragment: stored, nothing to say until the message is whole

    async def _answer(
        self,
        receipt: Receipt,
        bridge: Bridge,
        sender: str,
        meta: Mapping[str, str],
        message: SmsMessage | None,
        text: str,
        kind: str,
        inline: bool,
    ) -> Answer:
        if not text or not sender:
            return Answer("")
        if self._outbox is None:
            return Answer(text if inline else "")
        receiver = message.receiver if message is not None else meta.get("receiver", "")
        smsc = message.smsc if message is not None else meta.get("smsc", "")
        unsendable = None if inline or self.settings.can_send(bridge) else "no-sender"
        try:
            decision = await self._outbox.enqueue(
                NewReply(
                    raw_inbound_id=receipt.raw_id,
                    bridge=bridge,
                    recipient=sender,
                    sender_key=self.sender_key(sender),
                    kind=kind,
                    body=text,
                    deliver=not inline,
                    service_number=receiver or self.settings.short_code,
                    smsc=smsc or None,
                    tracking_id=receipt.tracking_id,
                    unsendable=unsendable,
                )
            )
        except _STORE_ERRORS as exc:
            raise IntakeUnavailable(f"reply not written: {exc}") from exc
        if decision.created and self._metrics is not None:
            outcome = {
                ReplyStatus.PENDING: "queued",
                ReplyStatus.INLINE: "inline",
                ReplyStatus.SUPPRESSED: "suppressed",
            }.get(decision.status, decision.status.value)
            self._metrics.replies.labels(bridge.value, outcome).inc()
            if decision.status is ReplyStatus.SUPPRESSED:
                reason = (decision.reason or "").split(":", 1)[0] or "unknown"
                self._metrics.suppressed.labels(reason).inc()
        if decision.status is ReplyStatus.SUPPRESSED and decision.created:
            log.info(
                "reply suppressed: %s",
                decision.reason,
                extra={"raw_id": receipt.raw_id, "reply_id": decision.reply_id},
            )
        if decision.status is ReplyStatus.PENDING and decision.created and self._on_reply:
            self._on_reply()
        if decision.status is ReplyStatus.INLINE:
            return Answer(decision.body, decision.reply_id)
        return Answer("", decision.reply_id)

    def _count_fragment(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.fragments.labels(outcome).inc()
