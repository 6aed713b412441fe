"""Record real Kannel ``post-url`` requests as test fixtures (run by hand, see fixtures/SOURCES.md).

``python -m tests.channels.sms.capture_kannel_post_url`` starts a recording HTTP sink and a real
bearerbox + smsbox (the harness's configuration with the sms-service's ``get-url`` replaced by a
``post-url``), injects one MO per scenario with fakesmsc and writes each request as
``fixtures/kannel/post_url__<scenario>.http`` (request line, headers, empty line, the body byte
for byte; ``http_fixtures.load`` reads it). Every number is a fake one, nothing needs scrubbing.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from aiohttp import web

from tests.channels.sms.kannel_harness import PostUrlKannel, concat_udh, data, ucs2
from tests.support import serving_app

OUT = Path(__file__).resolve().parent / "fixtures" / "kannel"
A = "+6281200000001"
TO = "1708"
MESSAGES = {
    "gsm": f"{A} {TO} text Jalan rusak @£$€ {{biaya}} [RT 05] ~ tolong é",
    "ucs2": f"{A} {TO} ucs2 " + ucs2("Lampu jalan mati 😡👍🏽 sudah 3 hari"),
    "data": f"{A} {TO} data "
    + data(b"Sampah menumpuk\r\ndi  Jl. Merdeka 10\r\n100% bau & kotor +"),
    "fragment": f"{A} {TO} udh-text {data(concat_udh(0x28, 4, 1))} Jalan Siliwangi rusak parah",
}
# (scenario prefix, sms-service lines after post-url, the post-url's query, mo-recode, messages)
RUNS = [
    ("sender_id", "send-sender = true", "?I=%I&t=%t", True, ["gsm", "ucs2", "data", "fragment"]),
    ("bare", "", "", True, ["gsm"]),  # post-url = "http://gw/sms/kannel", nothing else
    ("norecode", "send-sender = true", "", False, ["ucs2"]),
]
SKIPPED = {"Host", "Connection"}


async def main() -> None:
    received: list[bytes] = []

    async def sink(request: web.Request) -> web.Response:
        head = [f"{request.method} {request.raw_path} HTTP/1.1"]
        head += [f"{k}: {v}" for k, v in request.headers.items() if k not in SKIPPED]
        received.append("\n".join(head).encode("ascii") + b"\n\n" + await request.read())
        return web.Response(text="", content_type="text/plain")

    app = web.Application()
    app.router.add_post("/sms/kannel", sink)
    async with serving_app(app) as port:
        for prefix, lines, query, recode, names in RUNS:
            url = f"http://127.0.0.1:{port}/sms/kannel{query}"
            with tempfile.TemporaryDirectory() as tmp:
                kannel = PostUrlKannel(
                    Path(tmp), url, combine_timeout=2, service_lines=lines, recode=recode
                )
                try:
                    kannel.start()
                    for name in names:
                        before = len(received)
                        await kannel.inject(MESSAGES[name])
                        for _ in range(300):
                            if len(received) > before:
                                break
                            await asyncio.sleep(0.05)
                        got = received[before:]
                        if len(got) != 1:
                            print(f"{prefix}__{name}: {len(got)} requests", file=sys.stderr)
                            continue
                        (OUT / f"post_url__{prefix}__{name}.http").write_bytes(got[0])
                        print(f"{prefix}__{name}: {got[0][:200]!r}")
                finally:
                    kannel.stop()


if __name__ == "__main__":
    asyncio.run(main())
