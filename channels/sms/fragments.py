"""Joining the parts of a long SMS that reached us one by one (pure, no IO).

Kannel reassembles concatenated messages itself; only when a part is missing for
``sms-combine-concatenated-mo-timeout`` does it hand over the parts it has, each with its UDH.
The channel holds such parts (:class:`~channels.sms.ports.FragmentBuffer`) and, once the set is
complete, or once ``sms.fragment_timeout`` has passed since its first part, joins them into ONE
message that goes through the intake port like any other: its raw inbound body is the JSON
document built here (which parts, in which order, what is missing), so the ``sms.joined``
parser can read it again on a replay.

An incomplete set becomes a complaint with what arrived, each gap shown as ``[...]`` in the text
and the title saying which parts never came. A surrogate pair (an emoji) that the phone split
between two parts is whole again when both arrived; a half without its partner stays U+FFFD.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from channels.sms.message import Bridge
from channels.sms.ports import FragmentSet, HeldPart
from gateway.errors import ParseError

CONTENT_TYPE = "application/vnd.lapor.sms-joined+json"
GAP = "[...]"
# The longest title a complaint takes (the JSON API's limit). A UDH may announce up to 255
# parts (3GPP TS 23.040 9.2.3.24.1), and one SMS claiming that many is enough to make a list
# of the missing ones four times as long.
TITLE_MAX = 300


@dataclass(frozen=True, slots=True)
class Joined:
    """A joined message, as stored in its raw inbound body."""

    bridge: Bridge
    sender: str
    receiver: str
    smsc: str | None
    reference: int
    total: int
    texts: Mapping[int, str]  # sequence -> text
    raw_ids: tuple[str, ...]  # the parts' raw inbound ids

    @property
    def missing(self) -> list[int]:
        """Sequence numbers that never arrived."""
        return [n for n in range(1, self.total + 1) if n not in self.texts]

    @property
    def text(self) -> str:
        """The parts in order, a gap marker where one is missing (parts split mid-word)."""
        pieces: list[str] = []
        for n in range(1, self.total + 1):
            if n in self.texts:
                pieces.append(self.texts[n])
            elif not pieces or pieces[-1] != f" {GAP} ":
                pieces.append(f" {GAP} ")
        return "".join(pieces).strip()

    def title(self) -> str | None:
        """None when complete; else which parts are missing, in Indonesian, within
        :data:`TITLE_MAX` (``bagian 2 dan 3``, ``bagian 2 sampai 255``; the count when the
        list would not fit)."""
        missing = self.missing
        if not missing:
            return None
        title = f"SMS tidak lengkap: bagian {_listed(missing)} dari {self.total} tidak diterima"
        if len(title) <= TITLE_MAX:
            return title
        return f"SMS tidak lengkap: {len(missing)} dari {self.total} bagian tidak diterima"

    def provider_id(self) -> str:
        """Redelivery key of the joined message: the same parts always give the same id."""
        digest = hashlib.sha256("\n".join(sorted(self.raw_ids)).encode()).hexdigest()
        return f"joined:{digest[:40]}"

    def body(self) -> bytes:
        """The raw inbound body of the joined message."""
        doc = {
            "bridge": self.bridge.value,
            "sender": self.sender,
            "receiver": self.receiver,
            "smsc": self.smsc,
            "reference": self.reference,
            "total": self.total,
            "parts": [
                {"sequence": n, "text": t, "raw_inbound_id": r}
                for (n, t), r in zip(sorted(self.texts.items()), self.raw_ids, strict=True)
            ],
            "missing": self.missing,
        }
        return json.dumps(doc, ensure_ascii=False, sort_keys=True).encode("utf-8")


def _listed(numbers: list[int]) -> str:
    """Ascending part numbers as Indonesian reads a list: ``2``, ``2 dan 3``, ``2, 3, dan 5``,
    a run of three or more as ``5 sampai 7`` (the comma before ``dan`` as PUEBI writes it)."""
    items: list[str] = []
    start = 0
    while start < len(numbers):
        end = start
        while end + 1 < len(numbers) and numbers[end + 1] == numbers[end] + 1:
            end += 1
        if end - start >= 2:
            items.append(f"{numbers[start]} sampai {numbers[end]}")
        else:
            items.extend(str(n) for n in numbers[start : end + 1])
        start = end + 1
    if len(items) <= 2:
        return " dan ".join(items)
    return ", ".join(items[:-1]) + ", dan " + items[-1]


def join(fragments: FragmentSet) -> Joined:
    """The joined message of a held set (the first copy of a repeated part wins)."""
    parts: dict[int, HeldPart] = {}
    for part in sorted(fragments.parts, key=lambda p: (p.sequence, p.received_at)):
        parts.setdefault(part.sequence, part)
    texts = {n: part.text for n, part in parts.items()}
    for n, part in parts.items():
        after = parts.get(n + 1)
        if part.high_surrogate is None or after is None or after.low_surrogate is None:
            continue
        # The halves, U+FFFD at the end of this part and at the start of the next, become one
        # character, kept in this part.
        pair = 0x10000 + ((part.high_surrogate - 0xD800) << 10) + (after.low_surrogate - 0xDC00)
        texts[n] = texts[n][:-1] + chr(pair)
        texts[n + 1] = texts[n + 1][1:]
    return Joined(
        bridge=fragments.bridge,
        sender=fragments.meta.get("sender", ""),
        receiver=fragments.meta.get("receiver", ""),
        smsc=fragments.meta.get("smsc") or None,
        reference=fragments.reference,
        total=fragments.total,
        texts=texts,
        raw_ids=tuple(parts[n].raw_inbound_id for n in sorted(parts)),
    )


def read(body: bytes) -> Joined:
    """Parse a joined message's raw body; :class:`ParseError` when it is not one."""
    try:
        doc = json.loads(body)
        parts = doc["parts"]
        return Joined(
            bridge=Bridge(doc["bridge"]),
            sender=str(doc["sender"]),
            receiver=str(doc.get("receiver") or ""),
            smsc=doc.get("smsc"),
            reference=int(doc["reference"]),
            total=int(doc["total"]),
            texts={int(p["sequence"]): str(p["text"]) for p in parts},
            raw_ids=tuple(str(p["raw_inbound_id"]) for p in parts),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ParseError(
            f"pesan gabungan rusak / malformed joined SMS: {exc}", stage="decode"
        ) from None
