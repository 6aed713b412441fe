"""Attachments a refused form keeps, so that a citizen does not upload them a second time.

A form sent back with an error (an invalid NIK, a refused file, a rate limit, a busy database)
has already streamed its good attachments to the file store. A browser cannot fill a file input
again, and uploading photos twice over a slow mobile connection is what a citizen on a cheap
phone can least afford, so the form shown again lists those files as ticked checkboxes (unticking
one leaves it out). Each checkbox's value is a token ``<issued>.<payload>.<mac>``:

- ``payload`` is the attachment (hash, type, size, file name, and the photo's EXIF position when
  it had one), compact JSON in URL-safe base64;
- ``mac`` is HMAC-SHA256 of the browser's CSRF client id, the issue time and the payload, under a
  key derived from the form key for this purpose only.

So a token is good only in the browser it was given to, for ``max_age`` seconds (the form's own
lifetime), and names only a file that this browser uploaded: nobody can attach a file of someone
else's by guessing or copying its hash. Pure: no IO.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from channels.web.csrf import BoundTokens, b64, unb64
from channels.web.form import attachment_fields, attachment_of
from gateway.domain import Attachment
from gateway.errors import ParseError

FIELD = "lampiran_tersimpan"


@dataclass(frozen=True, slots=True)
class KeptFile:
    """One stored attachment a form carries over, with the position read from its EXIF."""

    attachment: Attachment
    gps: tuple[float, float] | None = None

    def label(self, lang: Literal["id", "en"]) -> str:
        """``jalan.jpg (195 KB)``, ``foto.jpg (3,1 MB)``: what the checkbox says."""
        name = self.attachment.filename or self.attachment.media_type
        return f"{name} ({size_text(self.attachment.size, lang)})"


def size_text(size: int, lang: Literal["id", "en"]) -> str:
    """``5 MB``, ``1,5 MB`` (Indonesian decimal comma) or ``48 KB``."""
    if size < 1_048_576:
        return f"{max(1, size // 1024)} KB"
    number = f"{size / 1_048_576:.1f}".removesuffix(".0")
    return f'{number.replace(".", ",") if lang == "id" else number} MB'


class KeptFiles:
    """Issues and opens the tokens of kept attachments with one key."""

    def __init__(self, form_key: bytes, max_age: float) -> None:
        self._tokens = BoundTokens(form_key, max_age, purpose=b"lapor kept attachments")

    def token(self, client_id: str, kept: KeptFile, now: float) -> str:
        """The checkbox value carrying ``kept`` for the browser ``client_id``."""
        data = attachment_fields(kept.attachment)
        if kept.gps is not None:
            data["gps"] = list(kept.gps)
        payload = b64(json.dumps(data, separators=(",", ":"), sort_keys=True).encode())
        return self._tokens.issue(client_id, payload, now)

    def open(self, token: str, client_id: str | None, now: float) -> KeptFile | None:
        """The file ``token`` names when it was issued to ``client_id`` and is still fresh."""
        payload = self._tokens.open(token, client_id, now)
        if payload is None:
            return None
        try:
            data = json.loads(unb64(payload))
            gps = data.pop("gps", None)
            attachment = attachment_of(data)
        except (ValueError, TypeError, AttributeError, binascii.Error, ParseError):
            return None  # only a token we signed gets here; it is well formed
        if isinstance(gps, list) and len(gps) == 2:
            return KeptFile(attachment, (float(gps[0]), float(gps[1])))
        return KeptFile(attachment)


def carried(
    kept: Sequence[KeptFile], attachments: Sequence[Attachment], gps: dict[str, tuple[float, float]]
) -> list[KeptFile]:
    """The kept files followed by this request's new ones, each file once."""
    out: dict[str, KeptFile] = {k.attachment.sha256: k for k in kept}
    for a in attachments:
        out.setdefault(a.sha256, KeptFile(a, gps.get(a.sha256)))
    return list(out.values())
