"""What every SMS bridge route does with an MO, after its own protocol checks.

1. The intake port stores the raw request, parses it and commits (``IntakeService.accept_with``)
   and, in the same transaction, the reply: chosen from the receipt (receipt with the tracking
   ID, status, help, "empty", "checked by an officer") and written to the reply outbox keyed on
   the MO's raw inbound id. The MO and its reply commit together or not at all. Flood control
   may suppress the reply. A ``CEK`` status is read just before, and so is whether the ID a
   complaint may be asking about exists (``Cek PDAM Taman Sari ...``: a query only if it does).
2. A fragment (a part Kannel could not reassemble) is held, without a reply; when its set is
   complete, or when ``fragment_timeout`` has passed (:meth:`SmsService.sweep`), the parts are
   joined into one message that goes through the intake port as ``sms.joined``, with its reply.
3. The route answers with the reply in its body (Kannel body mode, SMSSync, Gammu) or with
   nothing (the sender task sends it through the bridge).

When the database cannot commit, :class:`~gateway.errors.IntakeUnavailable` propagates and the
route answers its bridge's retry signal. A redelivered MO gets the first receipt back and its
reply row is found by the raw inbound id, so it never gets a second reply.
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
    SIM_BRIDGES,
    bridge_parser,
    decode,
    from_subscriber,
    interpret,
    interpret_joined,
    joined_parser,
)
from channels.sms.ports import (
    FragmentBuffer,
    FragmentSet,
    NewReply,
    ReplyDecision,
    ReplyOutbox,
    ReplyStatus,
)
from channels.sms.settings import SmsSettings
from gateway.domain import Channel, ParseOutcome, RawInbound, Receipt, ReceiptStatus
from gateway.errors import IntakeUnavailable, ParseError
from gateway.intake import Clock, FollowUp, IntakeService, Parser, TrackingStatus, utcnow
from normalizer import normalize_phone

log = logging.getLogger(__name__)

Reading = grammar.Interpretation | ParseError
_STORE_ERRORS = (SQLAlchemyError, OSError, TimeoutError, ConnectionError)
# Timed-out sets of parts read and joined at a time by :meth:`SmsService.sweep`.
SWEEP_BATCH = 100


def parsers(settings: SmsSettings) -> tuple[Parser, ...]:
    """Every parser of the channel (the registry and the routes must share them)."""
    return (
        *(Parser(PARSER_NAMES[b], bridge_parser(b, settings)) for b in Bridge),
        Parser(JOINED_PARSER, joined_parser(settings)),
    )


@dataclass(frozen=True, slots=True)
class _Reply:
    """What an MO's reply is made of, besides the intake's receipt."""

    bridge: Bridge
    sender: str
    meta: Mapping[str, str]
    message: SmsMessage | None
    reading: Reading
    status: TrackingStatus | None  # for CEK: the status, read before the MO's intake


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
        reading, parsed, status = await self._decide(*_read_once(read))
        sms: SmsMessage | None = message
        part = sms is not None and sms.fragment is not None and self._buffer is not None
        sender = sms.sender if sms is not None else raw.metadata.get("sender", "")
        reply = _Reply(bridge, sender, raw.metadata, sms, reading, status)
        # The reply is written in the intake's transaction: the MO and its reply commit together.
        # A part of a long message has nothing to say until the message is whole.
        receipt, decision = await self.intake.accept_with(
            raw, self._parsers[bridge], parsed, None if part else self._follow_up(reply, inline)
        )
        if part and sms is not None and receipt.status is ReceiptStatus.RECORDED:
            return await self._hold(receipt, sms, raw, inline)
        return await self._answer(receipt, reply, inline, decision)

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
        reading, parsed, status = await self._decide(
            *_read_once(lambda: interpret_joined(raw, self.settings))
        )
        reply = _Reply(joined.bridge, joined.sender, raw.metadata, None, reading, status)
        receipt, decision = await self.intake.accept_with(
            raw, self._joined, parsed, self._follow_up(reply, inline)
        )
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
        return await self._answer(receipt, reply, inline, decision)

    async def sweep(self) -> int:
        """Join every set whose first part is older than ``fragment_timeout``; how many."""
        if self._buffer is None:
            return 0
        cutoff = self._clock() - timedelta(seconds=self.settings.fragment_timeout)
        joined = 0
        while True:
            # A batch at a time: after a flood of parts with random references (each its own
            # set, never completed) the sets would otherwise all be read into memory at once.
            expired = await self._buffer.expired(cutoff, SWEEP_BATCH)
            for held in expired:
                await self.join(held, inline=False)
            joined += len(expired)
            if len(expired) < SWEEP_BATCH:
                return joined

    async def _decide(
        self, reading: Reading, parsed: ParseOutcome | ParseError | None
    ) -> tuple[Reading, ParseOutcome | ParseError | None, TrackingStatus | None]:
        """The reading, the outcome for the intake port and, for ``CEK <id>``, the complaint's
        status, read before the MO's own intake.

        A complaint that may be a status query (``Cek PDAM Taman Sari, ...``: two ordinary
        words passing for an ID, see ``grammar.Interpretation.maybe_status``) is one only when
        that ID exists: one look-up decides, and an unknown ID files the complaint.
        """
        if isinstance(reading, ParseError):
            return reading, parsed, None
        if reading.intent is grammar.Intent.COMPLAINT and reading.maybe_status is not None:
            found = await self.intake.status(reading.maybe_status)
            if found is None:
                return reading, parsed, None
            query = reading.as_status_query()
            return query, query.outcome, found
        if reading.intent is not grammar.Intent.STATUS or reading.tracking_id is None:
            return reading, parsed, None
        return reading, parsed, await self.intake.status(reading.tracking_id)

    def _text_for(self, receipt: Receipt, reply: _Reply) -> tuple[str, str]:
        """The reply's text and kind for ``receipt`` ('' when there is nothing to say)."""
        code = self.settings.short_code
        reading = reply.reading
        if reply.bridge in SIM_BRIDGES and not from_subscriber(reply.sender):
            # An operator's or a short code's message to the modem's SIM, also one that could
            # not be decoded (the grammar never saw its sender): never answered.
            return "", "none"
        if receipt.status is ReceiptStatus.QUARANTINED or isinstance(reading, ParseError):
            if isinstance(reading, ParseError) and reading.stage == "empty":
                return replies.empty(code), "empty"
            return replies.quarantined(receipt.tracking_id), "quarantined"
        if receipt.status in (ReceiptStatus.ACCEPTED, ReceiptStatus.DUPLICATE):
            tid = receipt.tracking_id
            if tid is None:
                return replies.quarantined(None), "quarantined"
            return replies.accepted(tid, code, reading.nik_rejected), "receipt"
        if receipt.status is ReceiptStatus.FOLLOWUP and receipt.tracking_id is not None:
            text = replies.followup(receipt.tracking_id, code, reading.nik_rejected)
            return text, "followup"
        if reading.intent is grammar.Intent.HELP:
            return replies.help_text(code, english=reading.english), "help"
        if reading.intent is grammar.Intent.TOO_SHORT:
            return replies.empty(code), "too-short"
        if reading.intent is grammar.Intent.THANKS:
            # "Terima kasih" after a receipt: an answer would only be thanked for again.
            return "", "none"
        if reading.intent is grammar.Intent.STATUS:
            found = reply.status
            if found is None:
                return replies.status_unknown(code, reading.typed), "status-unknown"
            text = replies.status_found(found.tracking_id, found.status, found.received_at)
            return text, "status"
        return "", "none"  # a fragment: stored, nothing to say until the message is whole

    def _new_reply(self, receipt: Receipt, reply: _Reply, inline: bool) -> NewReply | None:
        """The reply row owed for ``receipt``, or None (nothing to say, nobody to say it to)."""
        text, kind = self._text_for(receipt, reply)
        if not text or not reply.sender or self._outbox is None:
            return None
        meta, message = reply.meta, reply.message
        receiver = message.receiver if message is not None else meta.get("receiver", "")
        smsc = message.smsc if message is not None else meta.get("smsc", "")
        unsendable = None if inline or self.settings.can_send(reply.bridge) else "no-sender"
        return NewReply(
            raw_inbound_id=receipt.raw_id,
            bridge=reply.bridge,
            recipient=reply.sender,
            sender_key=self.sender_key(reply.sender),
            kind=kind,
            body=text,
            deliver=not inline,
            service_number=receiver or self.settings.short_code,
            smsc=smsc or None,
            tracking_id=receipt.tracking_id,
            unsendable=unsendable,
        )

    def _follow_up(self, reply: _Reply, inline: bool) -> FollowUp | None:
        """The reply as a follow-up of the MO's intake (None without a reply outbox)."""
        if self._outbox is None:
            return None
        return FollowUp(
            self._outbox.write_batch, lambda receipt: self._new_reply(receipt, reply, inline)
        )

    async def _answer(
        self, receipt: Receipt, reply: _Reply, inline: bool, decision: ReplyDecision | None
    ) -> Answer:
        """Answer the bridge; ``decision`` is the reply written with the MO, if it was."""
        if self._outbox is None:
            text, _ = self._text_for(receipt, reply)
            return Answer(text if inline and reply.sender else "")
        if decision is None:
            # Not written with the MO: a redelivery (its first delivery wrote the reply, which
            # is found and answered again), or a part that did not become a held part.
            new = self._new_reply(receipt, reply, inline)
            if new is None:
                return Answer("")
            try:
                decision = await self._outbox.enqueue(new)
            except _STORE_ERRORS as exc:
                raise IntakeUnavailable(f"reply not written: {exc}") from exc
        bridge = reply.bridge
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
