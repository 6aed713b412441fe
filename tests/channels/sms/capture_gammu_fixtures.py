"""Record real Gammu SMSD requests as test fixtures (run by hand, see fixtures/SOURCES.md).

``python -m tests.channels.sms.capture_gammu_fixtures`` starts a recording HTTP sink, a real
``gammu-smsd`` on Gammu's dummy phone whose RunOnReceive is ``config/gammu/lapor-onreceive``
pointing at the sink, puts one SMS per scenario into the phone's inbox and writes each request
the program sent, byte for byte, to ``fixtures/gammu/<event>__<scenario>.http``. Every number is
a fake one (+628120000000x), so nothing needs scrubbing.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from aiohttp import web

from tests.channels.sms.gammu_harness import running
from tests.support import serving_app

OUT = Path(__file__).resolve().parent / "fixtures" / "gammu"
A = "+6281200000005"
LONG = ("Jalan Siliwangi rusak parah sejak bulan lalu, " * 6).strip()

# name: (sender, text, unicode, long message)
SCENARIOS: dict[str, tuple[str, str, bool, bool]] = {
    "mo__gsm_text": (A, "Jalan rusak @£$ {biaya} [RT 05] ~ tolong", False, False),
    "mo__ucs2_emoji": (A, "Lampu jalan mati 😡👍🏽 sudah 3 hari\nRT 05 € é", True, False),
    "mo__region_nik_rahasia": (
        "081200000006", "jabar RAHASIA nik 3201014101900001 pungli di kantor kelurahan",
        False, False,
    ),
    "mo__long_2parts": (A, LONG, False, True),
    "mo__info": (A, "INFO", False, False),
}


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    captured: list[bytes] = []

    async def sink(request: web.Request) -> web.Response:
        body = await request.read()
        head = [f"{request.method} {request.path_qs} HTTP/1.1"]
        for name in ("Host", "Authorization", "User-Agent", "Accept", "Content-Type"):
            if name in request.headers:
                head.append(f"{name}: {request.headers[name]}")
        head.append(f"Content-Length: {len(body)}")
        captured.append("\n".join(head).encode() + b"\n\n" + body)
        return web.Response(text="", content_type="text/plain")

    app = web.Application()
    app.router.add_post("/sms/gammu", sink)
    async with serving_app(app) as port:
        with tempfile.TemporaryDirectory() as tmp, running(
            Path(tmp), f"http://127.0.0.1:{port}/sms/gammu", phone_id="modem-1"
        ) as smsd:
            for name, (sender, text, unicode, long) in SCENARIOS.items():
                before = len(captured)
                smsd.receive(sender, text, unicode=unicode, parts=2 if long else 1)
                for _ in range(200):
                    if len(captured) > before:
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise SystemExit(f"{name}: nothing posted\n{smsd.log()}")
                (OUT / f"{name}.http").write_bytes(captured[-1])
                print(f"{name}: {len(captured[-1])} bytes")


if __name__ == "__main__":
    asyncio.run(main())
