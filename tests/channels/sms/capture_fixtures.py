"""Record real Kannel get-url requests as test fixtures (run by hand, see fixtures/SOURCES.md).

``python -m tests.channels.sms.capture_fixtures`` starts a recording HTTP sink, a real
bearerbox + smsbox pointing at it, injects one MO per scenario with fakesmsc and writes each
request's raw query string to ``fixtures/kannel/<event>__<scenario>.txt``. Every number is a
fake one (+628120000000x), so nothing needs scrubbing.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from aiohttp import web

from gateway import tracking
from tests.channels.sms.kannel_harness import concat_udh, data, running, ucs2
from tests.support import serving_app

OUT = Path(__file__).resolve().parent / "fixtures" / "kannel"
A = "+6281200000001"
TO = "1708"
CEK_ID = "K7QM4XRT" + tracking._check_symbol("K7QM4XRT")
LONG = ("Jalan Siliwangi rusak parah sejak bulan lalu, " * 8).strip()


def _parts(text: str, size: int = 150) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


SCENARIOS: dict[str, list[str]] = {
    "mo__gsm_text": [f"{A} {TO} text Jalan rusak @£$€ {{biaya}} [RT 05] ~ tolong é"],
    "mo__ucs2_emoji": [f"{A} {TO} ucs2 " + ucs2("Lampu jalan mati 😡👍🏽 sudah 3 hari")],
    "mo__crlf_data": [
        f"{A} {TO} data " + data(b"Sampah menumpuk\r\ndi  Jl. Merdeka 10\r\n100% bau & kotor +")
    ],
    "mo__cek_status": [f"{A} {TO} text cek: {CEK_ID[:4]}-{CEK_ID[4:]}"],
    "mo__info": [f"{A} {TO} text INFO"],
    "mo__region_nik_rahasia": [
        f"{A} {TO} text jabar RAHASIA nik 3201014101900001 pungli di kantor kelurahan"
    ],
    "mo__empty": [f"{A} {TO} text  "],
    "mo__long_3parts_in_order": [
        f"{A} {TO} udh-text {data(concat_udh(0x21, 3, i + 1))} {part}"
        for i, part in enumerate(_parts(LONG))
    ],
    "mo__long_3parts_reversed": list(
        reversed(
            [
                f"{A} {TO} udh-text {data(concat_udh(0x22, 3, i + 1))} {part}"
                for i, part in enumerate(_parts(LONG))
            ]
        )
    ),
}
# A part whose siblings never come: Kannel sends it on its own after the combine timeout.
FRAGMENT = [f"{A} {TO} udh-text {data(concat_udh(0x28, 4, 1))} {_parts(LONG)[0]}"]


async def main() -> None:
    received: list[bytes] = []

    async def sink(request: web.Request) -> web.Response:
        received.append(request.raw_path.partition("?")[2].encode())
        return web.Response(text="", content_type="text/plain")

    app = web.Application()
    app.router.add_get("/sms/kannel", sink)
    OUT.mkdir(parents=True, exist_ok=True)
    async with serving_app(app) as port:
        url = f"http://127.0.0.1:{port}/sms/kannel?"
        with (
            tempfile.TemporaryDirectory() as tmp,
            running(Path(tmp), url, combine_timeout=2) as kannel,
        ):
            for name, parts in [*SCENARIOS.items(), ("mo__fragment_timeout", FRAGMENT)]:
                before = len(received)
                for part in parts:
                    await kannel.inject(part)
                for _ in range(200):
                    if len(received) > before:
                        break
                    await asyncio.sleep(0.05)
                got = received[before:]
                if len(got) != 1:
                    print(f"{name}: {len(got)} requests", file=sys.stderr)
                    continue
                (OUT / f"{name}.txt").write_bytes(got[0] + b"\n")
                print(f"{name}: {got[0].decode()}")


if __name__ == "__main__":
    asyncio.run(main())
