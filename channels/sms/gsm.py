"""GSM 03.38 default alphabet, unpacked (one septet per octet), to text (pure).

SMPP gateways hand over text in the "SMSC default alphabet" (data_coding 0) as one octet per
septet (SMPP 3.4 section 5.2.19; 3GPP TS 23.038 section 6.2.1). ``0x1B`` escapes to the extension
table (``€ [ ] { } ~ ^ | \\`` and the form feed). A septet above 0x7F cannot be GSM: the caller
decides what to do (:class:`ValueError`).
"""

from __future__ import annotations

BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
ESCAPE = 0x1B
assert len(BASIC) == 128


def decode_unpacked(data: bytes) -> str:
    """Septets, one per octet, to text; :class:`ValueError` on an octet above 0x7F."""
    out: list[str] = []
    escaped = False
    for octet in data:
        if octet > 0x7F:
            raise ValueError(f"octet 0x{octet:02X} is not a GSM 7-bit septet")
        if escaped:
            # An unknown extension code shows the basic character (TS 23.038 6.2.1.1 note 1).
            out.append(EXTENSION.get(octet, BASIC[octet] if octet != ESCAPE else " "))
            escaped = False
        elif octet == ESCAPE:
            escaped = True
        else:
            out.append(BASIC[octet])
    if escaped:
        out.append(" ")
    return "".join(out)
