"""Read the raw HTTP request fixtures (``fixtures/<bridge>/<event>__<scenario>.http``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ANDROID_KEY = b"android-fixture-signing-key"


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


def load(name: str) -> Request:
    """``name`` is ``<bridge>/<event>__<scenario>``."""
    raw = (FIXTURES / f"{name}.http").read_bytes()
    head, _, body = raw.partition(b"\n\n")
    lines = head.decode("ascii").split("\n")
    method, target, _ = lines[0].split(" ")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert int(headers["Content-Length"]) == len(body), name
    return Request(method, target, headers, body)
