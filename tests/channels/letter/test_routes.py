"""The letter desk over HTTP on the real databases, RabbitMQ and Tesseract: login, lockout,
CSRF, roles, upload, reading, review, confirmation, receipt."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from ipaddress import ip_network
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar, FormData
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select

from channels.letter.auth import Role, StaffStore
from channels.letter.drafts import DraftStore
from channels.letter.ocr import count_pages
from channels.letter.staff import HEADERS
from gateway import bootstrap, tracking
from gateway.settings import Settings
from gateway.storage.schema import letter_drafts, staff_sessions
from tests.channels.letter import damaged
from tests.channels.letter.conftest import PASSWORD, add_staff, csrf_token, login
from tests.channels.letter.letterset import LetterSample, generate
from tests.support import FixedClock, drain, opened_raw, with_section

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]
TID = re.compile(r'id="tracking-id">([^<]+)<')


@cache
def sample(name: str) -> LetterSample:
    [found] = generate(names=[name])
    return found


def small_scan(kind: str = "PNG", text: str = "Surat") -> bytes:
    """A small page that Tesseract reads in a moment (for tests that are not about reading)."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (320, 120), 255)
    ImageDraw.Draw(img).text((20, 50), text, fill=0)
    out = io.BytesIO()
    img.save(out, kind)
    return out.getvalue()


def upload_form(
    token: str, files: list[tuple[str, bytes]], one_letter: bool = False, upload_id: str = ""
) -> FormData:
    fd = FormData()
    fd.add_field("csrf", token)
    if upload_id:
        fd.add_field("upload_id", upload_id)
    if one_letter:
        fd.add_field("one_letter", "1")
    for name, data in files:
        fd.add_field("berkas", io.BytesIO(data), filename=name,
                     content_type="application/octet-stream")
    return fd


async def draft_count(gw: bootstrap.Gateway) -> int:
    async with gw.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(letter_drafts))).scalar_one())


async def upload(client: TestClient[Any, Any], token: str, files: list[tuple[str, bytes]],
                 one_letter: bool = False) -> str:
    """Upload; the progress page's address."""
    resp = await client.post("/staff/letters", data=upload_form(token, files, one_letter),
                             allow_redirects=False)
    assert resp.status == 303, await resp.text()
    location = resp.headers["Location"]
    assert location.startswith("/staff/uploads/")
    return location


async def wait_until_read(client: TestClient[Any, Any], batch_url: str,
                          timeout: float = 180.0) -> dict[str, Any]:
    """Poll progress.json until no letter is being read; every state seen on the way."""
    seen: list[tuple[str, int, int | None]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        resp = await client.get(batch_url + "/progress.json")
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
        data: dict[str, Any] = await resp.json()
        for letter in data["letters"]:
            state = (letter["status"], letter["pages_done"], letter["pages_total"])
            if not seen or seen[-1] != state:
                seen.append(state)
        if data["done"]:
            data["seen"] = seen
            return data
        assert asyncio.get_running_loop().time() < deadline, f"still reading: {seen}"
        await asyncio.sleep(0.2)


# ---- access, sessions, CSRF, roles ------------------------------------------------------------


async def test_staff_pages_need_a_login_and_are_never_cached(
    client: TestClient[Any, Any], staff: StaffStore
) -> None:
    home = await client.get("/staff/", allow_redirects=False)
    assert home.status == 303 and home.headers["Location"] == "/staff/login"
    assert home.headers["Cache-Control"] == "no-store"
    deep = await client.get("/staff/letters/abc/pages/1?x=1&y=2", allow_redirects=False)
    assert deep.headers["Location"] == "/staff/login?next=/staff/letters/abc/pages/1%3Fx%3D1%26y%3D2"
    assert (await client.get("/staff", allow_redirects=False)).headers["Location"] == "/staff/"
    form = await client.get("/staff/login")
    html = await form.text()
    assert form.status == 200 and "Masuk petugas" in html and 'name="csrf"' in html
    assert form.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in form.headers["Content-Security-Policy"]
    assert (await client.post("/staff/letters", data={"csrf": "x"})).status == 403
    english = await client.get("/staff/login?lang=en")
    assert "Staff login" in await english.text()
    public = await (await client.get("/")).text()
    assert "/staff" not in public  # the staff pages are not linked from the citizen form


async def test_login_cookie_logout(client: TestClient[Any, Any], staff: StaffStore) -> None:
    form = await client.get("/staff/login?next=/staff/accounts")
    token = csrf_token(await form.text())
    resp = await client.post(
        "/staff/login",
        data={"csrf": token, "username": "Ani", "password": PASSWORD, "next": "/staff/accounts"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/staff/accounts"
    cookie = next(v for k, v in resp.headers.items() if k == "Set-Cookie" and "lapor_staff=" in v)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/staff" in cookie
    assert "Secure" not in cookie  # letter.cookie_secure is off on the embedded default
    assert "Max-Age" not in cookie and "expires" not in cookie.lower()  # ends with the browser
    home = await client.get("/staff/")
    html = await home.text()
    assert home.status == 200 and 'id="who">ani (supervisor)' in html
    session_csrf = csrf_token(html)
    assert session_csrf != token  # a login starts a new session
    assert (await client.post("/staff/logout", data={"csrf": "wrong"})).status == 403
    out = await client.post("/staff/logout", data={"csrf": session_csrf}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/staff/login"
    assert (await client.get("/staff/", allow_redirects=False)).status == 303
    # No open redirect through ?next=.
    form = await client.get("/staff/login?next=//evil.example/")
    assert 'name="next" value="/staff/"' in await form.text()
    evil = await client.post(
        "/staff/login",
        data={"csrf": csrf_token(await form.text()), "username": "ani", "password": PASSWORD,
              "next": "//evil.example/"},
        allow_redirects=False,
    )
    assert evil.status == 303 and evil.headers["Location"] == "/staff/"


async def test_wrong_passwords_lock_the_account(
    client: TestClient[Any, Any], staff: StaffStore
) -> None:
    for attempt in range(1, 4):
        token = csrf_token(await (await client.get("/staff/login")).text())
        resp = await client.post(
            "/staff/login", data={"csrf": token, "username": "budi", "password": "salah-salah"}
        )
        html = await resp.text()
        if attempt < 3:
            assert resp.status == 403 and "Nama pengguna atau kata sandi salah" in html
        else:
            assert resp.status == 429 and "dikunci sementara" in html
            assert 800 < int(resp.headers["Retry-After"]) <= 900
    token = csrf_token(await (await client.get("/staff/login?lang=en")).text())
    right = await client.post(
        "/staff/login", data={"csrf": token, "username": "budi", "password": PASSWORD}
    )
    assert right.status == 429 and "locked after too many failed attempts" in await right.text()
    # The supervisor unlocks it from the accounts page.
    await login(client, "ani")
    page = await (await client.get("/staff/accounts")).text()
    [budi_id] = [a.id for a in await staff.accounts() if a.username == "budi"]
    assert f"/staff/accounts/{budi_id}/unlock" in page
    done = await client.post(f"/staff/accounts/{budi_id}/unlock", data={"csrf": csrf_token(page)})
    assert done.status == 200
    client.session.cookie_jar.clear()
    await login(client, "budi")


async def test_failed_logins_from_one_address_stop_that_address_not_the_office(
    letter_settings: Settings, aiohttp_client: Client, staff: StaffStore
) -> None:
    # A guesser tries one password on each account: no account reaches its lockout (3), but
    # the address's failures (4 here) stop it. Clerks behind another address log in still, and
    # successful logins never count.
    settings = with_section(
        with_section(letter_settings, "letter", login_address_failures=4),
        "web", csrf_key=SecretStr("k"), trusted_proxies=(ip_network("127.0.0.1/32"),),
    )
    # A fixed clock: the address's windows (900 s) start on the quarter hour, and a real clock
    # could cross one between the failures (the refused attempt then counted in a fresh one).
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, 15, tzinfo=UTC))
    gateway = bootstrap.build(settings, clock=clock)
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        guesser = {"X-Forwarded-For": "203.0.113.9"}

        async def attempt(user: str, password: str, headers: dict[str, str]) -> Any:
            form = await client.get("/staff/login", headers=headers)
            token = csrf_token(await form.text())
            return await client.post(
                "/staff/login", data={"csrf": token, "username": user, "password": password},
                headers=headers, allow_redirects=False,
            )

        office = {"X-Forwarded-For": "198.51.100.20"}
        for _ in range(5):  # the office's morning: logins that succeed are not counted
            assert (await attempt("budi", PASSWORD, office)).status == 303
            client.session.cookie_jar.clear()
        for user in ("ani", "budi", "citra", "nobody"):
            assert (await attempt(user, "tebakan-salah", guesser)).status == 403
        refused = await attempt("ani", PASSWORD, guesser)  # even the right one: not checked
        text = await refused.text()
        assert refused.status == 429 and "Terlalu banyak percobaan masuk yang gagal" in text
        assert 0 < int(refused.headers["Retry-After"]) <= 900
        assert (await client.get("/staff/", allow_redirects=False)).status == 303
        accounts = {a.username: a for a in await staff.accounts()}
        assert all(a.locked_until is None for a in accounts.values())
        assert accounts["ani"].failed_logins == 1  # the refused attempt reached no account
        assert (await attempt("citra", PASSWORD, office)).status == 303
    finally:
        await gateway.close()


async def test_login_forms_asked_for_again_and_again_stop_being_stored(
    letter_settings: Settings, aiohttp_client: Client
) -> None:
    # Each form given without a valid pre-login cookie stores a session for an hour: a client
    # asking without its cookie filled the table at its own rate.
    settings = with_section(
        with_section(letter_settings, "letter", login_address_forms=3),
        "web", csrf_key=SecretStr("k"),
    )
    # A fixed clock: the address's windows (900 s) start on the quarter hour, and a real clock
    # could cross one between the forms (the fourth then counted in a fresh one).
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, 15, tzinfo=UTC))
    gateway = bootstrap.build(settings, clock=clock)
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))

        async def sessions() -> int:
            async with gateway.engine.connect() as conn:
                return int((await conn.execute(
                    select(func.count()).select_from(staff_sessions)
                )).scalar_one())

        for _ in range(3):
            client.session.cookie_jar.clear()
            assert (await client.get("/staff/login")).status == 200
        for _ in range(3):  # a browser keeping its cookie reuses its session: not counted
            assert (await client.get("/staff/login")).status == 200
        assert await sessions() == 3
        client.session.cookie_jar.clear()
        refused = await client.get("/staff/login")
        assert refused.status == 429 and 0 < int(refused.headers["Retry-After"]) <= 900
        assert "Terlalu banyak permintaan halaman masuk" in await refused.text()
        assert await sessions() == 3  # nothing stored for it
    finally:
        await gateway.close()


async def test_a_login_forms_token_is_good_for_one_attempt(
    client: TestClient[Any, Any], staff: StaffStore
) -> None:
    token = csrf_token(await (await client.get("/staff/login")).text())
    # Sent several times at once, the token lets one attempt through; the others are refused
    # before any password is checked.
    answers = await asyncio.gather(*(
        client.post("/staff/login", data={"csrf": token, "username": "budi",
                                          "password": f"tebakan-{i}"})
        for i in range(4)
    ))
    texts = [await a.text() for a in answers]
    assert [a.status for a in answers] == [403] * 4
    assert sum("Nama pengguna atau kata sandi salah" in t for t in texts) == 1
    assert sum("kedaluwarsa" in t for t in texts) == 3
    [budi] = [a for a in await staff.accounts() if a.username == "budi"]
    assert budi.failed_logins == 1
    # Once spent, even the right password with it is refused (and not counted) ...
    again = await client.post(
        "/staff/login", data={"csrf": token, "username": "budi", "password": PASSWORD}
    )
    assert again.status == 403 and "kedaluwarsa" in await again.text()
    assert (await client.get("/staff/", allow_redirects=False)).status == 303
    # ... and the answer to a failed attempt carries a fresh token that works.
    wrong = await client.post(
        "/staff/login", data={"csrf": csrf_token(await again.text()), "username": "budi",
                              "password": "salah-salah"}
    )
    assert wrong.status == 403 and "kata sandi salah" in await wrong.text()
    fresh = csrf_token(await wrong.text())
    assert fresh != token
    right = await client.post(
        "/staff/login", data={"csrf": fresh, "username": "budi", "password": PASSWORD},
        allow_redirects=False,
    )
    assert right.status == 303
    [budi] = [a for a in await staff.accounts() if a.username == "budi"]
    assert budi.failed_logins == 0


async def test_every_form_needs_the_sessions_csrf_token(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    await client.get("/staff/login")
    refused = await client.post(
        "/staff/login", data={"csrf": "forged", "username": "budi", "password": PASSWORD}
    )
    assert refused.status == 403 and "kedaluwarsa" in await refused.text()
    token = await login(client, "budi")
    jpeg = small_scan("JPEG")
    bad = await client.post("/staff/letters", data=upload_form(token[:-2] + "xx", [("a.jpg", jpeg)]))
    assert bad.status == 403 and await draft_count(gw) == 0
    missing = await client.post("/staff/letters", data=upload_form("", [("a.jpg", jpeg)]))
    assert missing.status == 403 and await draft_count(gw) == 0
    location = await upload(client, token, [("a.jpg", jpeg)])
    draft_id = (await (await client.get(location + "/progress.json")).json())["letters"][0]["id"]
    forged = await client.post(f"/staff/letters/{draft_id}",
                               data={"csrf": "nope", "action": "confirm", "body": "x" * 20})
    assert forged.status == 403
    assert (await client.post(f"/staff/letters/{draft_id}/read-again")).status == 403
    # A token of another session does not open this one.
    other = await aiohttp_client_like(client)
    other_token = await login(other, "citra")
    assert other_token != token
    cross = await client.post("/staff/logout", data={"csrf": other_token})
    assert cross.status == 403
    await other.close()


async def aiohttp_client_like(client: TestClient[Any, Any]) -> Any:
    """A second browser (its own cookies) on the same server."""
    base = str(client.make_url("/")).rstrip("/")
    return ClientSession(base_url=base, cookie_jar=CookieJar(unsafe=True))


async def test_clerks_cannot_do_what_supervisors_do(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    token = await login(client, "budi")
    accounts = await client.get("/staff/accounts")
    assert accounts.status == 403 and "hanya untuk supervisor" in await accounts.text()
    create = await client.post(
        "/staff/accounts",
        data={"csrf": token, "username": "dedi", "role": "supervisor", "password": PASSWORD,
              "password2": PASSWORD},
    )
    assert create.status == 403
    assert "dedi" not in [a.username for a in await staff.accounts()]
    scan = small_scan("JPEG", "Budi")
    location = await upload(client, token, [("surat-budi.jpg", scan)])
    draft_id = (await (await client.get(location + "/progress.json")).json())["letters"][0]["id"]
    home = await (await client.get("/staff/")).text()
    assert "surat-budi.jpg" in home and "Diunggah oleh" not in home

    # Another clerk sees neither the letter nor its pages.
    citra = await aiohttp_client_like(client)
    await login(citra, "citra")
    assert "surat-budi.jpg" not in await (await citra.get("/staff/")).text()
    assert (await citra.get(f"/staff/letters/{draft_id}")).status == 403
    assert (await citra.get(f"/staff/letters/{draft_id}/files/0")).status == 403
    assert (await citra.get(location)).status == 403
    await citra.close()

    # The supervisor sees every clerk's letters and manages accounts.
    ani = await aiohttp_client_like(client)
    ani_token = await login(ani, "ani")
    all_letters = await (await ani.get("/staff/")).text()
    assert "surat-budi.jpg" in all_letters and "Diunggah oleh" in all_letters
    original = await ani.get(f"/staff/letters/{draft_id}/files/0")
    assert original.status == 200 and await original.read() == scan
    # Streamed from the store, with the staff pages' headers all the same.
    assert original.headers["Content-Disposition"].startswith('attachment; filename="surat-')
    for name in ("Cache-Control", "X-Content-Type-Options", "Content-Security-Policy"):
        assert original.headers[name] == HEADERS[name], name
    made = await ani.post(
        "/staff/accounts",
        data={"csrf": ani_token, "username": "dedi", "role": "clerk", "password": PASSWORD,
              "password2": PASSWORD},
    )
    assert made.status == 200 and "Akun dedi dibuat" in await made.text()
    weak = await ani.post(
        "/staff/accounts",
        data={"csrf": ani_token, "username": "eko", "role": "clerk", "password": "pendek",
              "password2": "pendek"},
    )
    assert weak.status == 422 and "paling sedikit" in await weak.text()
    [dedi] = [a for a in await staff.accounts() if a.username == "dedi"]
    off = await ani.post(f"/staff/accounts/{dedi.id}/disable", data={"csrf": ani_token},
                         allow_redirects=False)
    assert off.status == 303
    dedi_browser = await aiohttp_client_like(client)
    form = csrf_token(await (await dedi_browser.get("/staff/login")).text())
    refused = await dedi_browser.post(
        "/staff/login", data={"csrf": form, "username": "dedi", "password": PASSWORD}
    )
    assert refused.status == 403
    await dedi_browser.close()
    await ani.close()


async def test_unsupported_or_broken_files_are_refused_by_name(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    token = await login(client, "budi")
    docx = b"PK\x03\x04" + b"\x00" * 200
    resp = await client.post("/staff/letters", data=upload_form(token, [("surat.docx", docx)]))
    html = await resp.text()
    assert resp.status == 415
    assert "Berkas surat.docx bukan PDF, JPEG, PNG atau TIFF" in html
    broken = await client.post(
        "/staff/letters", data=upload_form(token, [("rusak.pdf", b"%PDF-1.4\n garbage")])
    )
    assert broken.status == 422 and "rusak.pdf" in await broken.text()
    en = await client.post(
        "/staff/letters?lang=en", data=upload_form(token, [("surat.docx", docx)])
    )
    assert en.status == 415 and "The file surat.docx is not a PDF, JPEG, PNG or TIFF" in await en.text()
    none = await client.post("/staff/letters", data=upload_form(token, []))
    assert none.status == 400
    assert await draft_count(gw) == 0


DAMAGED = "rusak atau tidak utuh", "is damaged or incomplete"
UNREADABLE = "rusak atau tidak dapat dibaca", "is damaged or cannot be read"


@pytest.mark.parametrize(
    ("name", "make", "pages", "says"),
    [
        ("potong.jpg", damaged.cut_jpeg, 1, DAMAGED),  # no EOI: its scan stops part way
        ("potong.pdf", damaged.cut_pdf, 2, DAMAGED),  # a slice of the body lost
        ("rusak.png", damaged.cut_png, 1, DAMAGED),  # cut in its picture data
        ("hilang.pdf", damaged.pdf_with_a_lost_page, 2, UNREADABLE),  # page 1 overwritten
        ("potong.tif", damaged.cut_tiff, 2, UNREADABLE),  # page 2's strips past the end
    ],
    ids=["jpeg-cut", "pdf-body-cut", "png-cut", "pdf-page-lost", "tiff-cut"],
)
async def test_a_damaged_scan_is_refused_by_name_and_never_becomes_a_letter(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore,
    name: str, make: Callable[[], bytes], pages: int, says: tuple[str, str],
) -> None:
    token = await login(client, "budi")
    data = make()
    assert count_pages(data) == pages  # counting its pages alone took it
    refused = await client.post("/staff/letters", data=upload_form(token, [(name, data)]))
    html = await refused.text()
    assert refused.status == 422 and f"Berkas {name} {says[0]}" in html
    assert 'id="uploaded"' not in html
    en = await client.post("/staff/letters?lang=en", data=upload_form(token, [(name, data)]))
    assert en.status == 422 and f"The file {name} {says[1]}" in await en.text()
    assert await draft_count(gw) == 0  # stored in the file store, but no letter


async def test_the_same_upload_form_sent_twice_makes_one_batch(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    # A double click on Unggah, or the answer reloaded: one batch, not two.
    token = await login(client, "budi")
    found = re.search(r'name="upload_id" value="([^"]+)"', await (await client.get("/staff/")).text())
    assert found
    form_id = found.group(1)
    files = [("a.png", small_scan("PNG", "Satu")), ("b.png", small_scan("PNG", "Dua"))]
    sent = await asyncio.gather(*(
        client.post("/staff/letters", data=upload_form(token, files, upload_id=form_id),
                    allow_redirects=False)
        for _ in range(2)
    ))
    assert [r.status for r in sent] == [303, 303]
    assert sent[0].headers["Location"] == sent[1].headers["Location"]
    again = await client.post("/staff/letters", data=upload_form(token, files, upload_id=form_id),
                              allow_redirects=False)
    assert again.headers["Location"] == sent[0].headers["Location"]
    assert await draft_count(gw) == 2
    # The form brought back (Back) and sent with another file is another upload; a new form
    # with the same files too.
    other = [("c.png", small_scan("PNG", "Tiga"))]
    await client.post("/staff/letters", data=upload_form(token, other, upload_id=form_id))
    await client.post("/staff/letters", data=upload_form(token, files))
    assert await draft_count(gw) == 5
    # The answer of a batch with a damaged file reloaded: its good letter is not made again.
    mixed = [("d.png", small_scan("PNG", "Empat")), ("potong.jpg", damaged.cut_jpeg())]
    for _ in range(2):
        resp = await client.post("/staff/letters", data=upload_form(token, mixed, upload_id="f-2"))
        assert resp.status == 422
    assert await draft_count(gw) == 6


async def test_a_valid_scan_of_each_kind_is_accepted_and_read(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    token = await login(client, "budi")
    files = [("surat.jpg", damaged.jpeg("Satu")), ("surat.png", damaged.png("Dua")),
             ("surat.pdf", damaged.pdf("Tiga")), ("surat.tif", damaged.tiff("Empat"))]
    batch = await upload(client, token, files)
    data = await wait_until_read(client, batch)
    assert [(d["status"], d["pages_total"]) for d in data["letters"]] == [
        ("ready", 1), ("ready", 1), ("ready", 2), ("ready", 2)
    ]


async def test_a_batch_keeps_its_good_letters_and_names_the_damaged_ones(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    token = await login(client, "budi")
    files = [("a.jpg", damaged.jpeg("Satu")), ("potong.pdf", damaged.cut_pdf()),
             ("b.png", damaged.png("Dua")), ("potong.jpg", damaged.cut_jpeg())]
    resp = await client.post("/staff/letters", data=upload_form(token, files))
    html = await resp.text()
    assert resp.status == 422
    assert "Berkas potong.pdf rusak atau tidak utuh" in html
    assert "Berkas potong.jpg rusak atau tidak utuh" in html
    assert "2 surat lainnya sudah diunggah dan sedang dibaca." in html
    found = re.search(r'<a href="(/staff/uploads/[^"]+)" id="uploaded-progress">', html)
    assert found, html
    # The good letters went in as they would have alone, one letter each; the damaged did not.
    letters = (await (await client.get(found.group(1) + "/progress.json")).json())["letters"]
    drafts = DraftStore(gw.engine, gw.keys)
    kept = [await drafts.get(letter["id"]) for letter in letters]
    assert [[f.filename for f in d.files] if d else None for d in kept] == [["a.jpg"], ["b.png"]]
    assert await draft_count(gw) == 2
    # In English, with one good letter left.
    en = await client.post(
        "/staff/letters?lang=en",
        data=upload_form(token, [("c.jpg", damaged.jpeg("Tiga")), ("rusak.png", damaged.cut_png())]),
    )
    text = await en.text()
    assert en.status == 422 and "The file rusak.png is damaged or incomplete" in text
    assert "The other letter was uploaded and is being read." in text
    assert await draft_count(gw) == 3


async def test_one_letter_with_a_damaged_page_is_not_uploaded_without_it(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    token = await login(client, "budi")
    files = [("hal1.jpg", damaged.jpeg("Satu")), ("hal2.png", damaged.cut_png())]
    resp = await client.post("/staff/letters", data=upload_form(token, files, one_letter=True))
    html = await resp.text()
    assert resp.status == 422 and "Berkas hal2.png rusak atau tidak utuh" in html
    assert "Surat ini belum diunggah" in html and 'id="uploaded"' not in html
    assert await draft_count(gw) == 0


async def test_a_batch_is_one_letter_per_file_unless_told_otherwise(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    token = await login(client, "budi")
    one, two = small_scan("JPEG", "Satu"), small_scan("PNG", "Dua")
    batch = await upload(client, token, [("a.jpg", one), ("b.png", two)])
    letters = (await (await client.get(batch + "/progress.json")).json())["letters"]
    assert len(letters) == 2
    together = await upload(client, token, [("hal1.jpg", one), ("hal2.png", two)], one_letter=True)
    [letter] = (await (await client.get(together + "/progress.json")).json())["letters"]
    page = await (await client.get(together)).text()
    assert "hal1.jpg (+1)" in page
    assert await draft_count(gw) == 3
    # One letter of both files, in the order they were uploaded; the batch made one letter each.
    drafts = DraftStore(gw.engine, gw.keys)
    joined = await drafts.get(letter["id"])
    assert joined is not None and [f.filename for f in joined.files] == ["hal1.jpg", "hal2.png"]
    separate = [await drafts.get(d["id"]) for d in letters]
    assert [[f.filename for f in d.files] if d else None for d in separate] == [["a.jpg"], ["b.png"]]


async def test_metrics_show_the_letters_read_and_the_backlog(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    token = await login(client, "budi")
    batch = await upload(client, token, [("a.png", small_scan("PNG", "Satu"))])
    await wait_until_read(client, batch)
    text = await (await client.get("/metrics")).text()
    for line in (
        'lapor_letter_reads_total{outcome="read"} 1.0',
        "lapor_letter_read_seconds_count 1.0",
        'lapor_letter_drafts{status="ready"} 1.0',
        'lapor_letter_drafts{status="reading"} 0.0',
        "lapor_letter_oldest_waiting_seconds 0.0",
    ):
        assert line in text.splitlines(), line


# ---- the whole path --------------------------------------------------------------------------


async def test_upload_read_review_correct_confirm_publish_once(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore, settings: Settings
) -> None:
    letter = sample("letter-05")  # a scanned 2-page PDF
    assert letter.pages == 2
    token = await login(client, "budi")
    batch = await upload(client, token, [(letter.filename, letter.data)])
    progress = await (await client.get(batch)).text()
    assert "letter-05.pdf" in progress and ('http-equiv="refresh"' in progress
                                            or "st-ready" in progress)
    data = await wait_until_read(client, batch)
    [state] = data["letters"]
    assert state["status"] == "ready" and state["pages_done"] == state["pages_total"] == 2
    # The letter was seen being read (OCR of two scanned pages takes far longer than a poll),
    # then ready; the pages read only ever went up.
    statuses = [status for status, _, _ in data["seen"]]
    assert statuses[0] == "reading" and statuses[-1] == "ready", data["seen"]
    assert statuses == sorted(statuses, key=["reading", "ready"].index), data["seen"]
    done = [pages_done for _, pages_done, _ in data["seen"]]
    assert done == sorted(done), data["seen"]

    review = await client.get(state["review_url"])
    html = await review.text()
    assert review.status == 200 and "Periksa surat" in html
    assert html.count(f'/staff/letters/{state["id"]}/pages/') == 2
    image = await client.get(f'/staff/letters/{state["id"]}/pages/2')
    assert image.status == 200 and image.content_type == "image/png"
    assert (await image.read()).startswith(b"\x89PNG")
    assert image.headers["Cache-Control"] == "no-store"
    for name in ("sender_name", "nik", "address", "phone", "letter_date", "subject", "body"):
        assert f'id="{name}"' in html
    truth = letter.fields
    assert truth.nik is not None and truth.phone_e164 is not None

    corrected = "Banjir setinggi lutut di Cileunyi Kulon (dikoreksi petugas)"
    values = {
        "csrf": token,
        "sender_name": truth.sender_name,
        "nik": truth.nik,
        "address": truth.address or "",
        "phone": truth.phone or "",
        "letter_date": truth.letter_date,
        "letter_place": truth.letter_place or "",
        "addressee": truth.addressee or "",
        "subject": corrected,
        "body": truth.body,
        "kind": "pengaduan",
        "nik_checked": "1",  # the KTP copy stapled on
    }
    saved = await client.post(f'/staff/letters/{state["id"]}', data={**values, "action": "save"},
                              allow_redirects=False)
    assert saved.status == 303 and saved.headers["Location"].endswith("?saved=1")
    again = await (await client.get(saved.headers["Location"])).text()
    assert "Draf disimpan" in again and corrected in again  # the draft survives a new page
    assert await gw.intake.count_complaints() == 0  # saving sends nothing

    bad = await client.post(f'/staff/letters/{state["id"]}',
                            data={**values, "nik": "3209014101900000", "action": "confirm"})
    assert bad.status == 422 and 'id="nik-err"' in await bad.text()
    unchecked = await client.post(f'/staff/letters/{state["id"]}',
                                  data={**values, "nik": "", "action": "confirm"})
    page = await unchecked.text()
    assert unchecked.status == 422 and "hapus centang NIK sesuai KTP" in page
    assert 'id="nik_checked" name="nik_checked" value="1" checked' in page  # as ticked
    assert await gw.intake.count_complaints() == 0

    confirm = await client.post(f'/staff/letters/{state["id"]}',
                                data={**values, "action": "confirm"}, allow_redirects=False)
    assert confirm.status == 303 and confirm.headers["Location"].endswith("/receipt")
    receipt = await (await client.get(confirm.headers["Location"])).text()
    shown = TID.search(receipt)
    assert shown is not None
    tid = tracking.normalize(shown.group(1))
    assert tid is not None and shown.group(1) == tracking.display(tid)
    assert f"CEK {tid}" in receipt and "1708" in receipt and "<svg" in receipt
    assert "https://lapor.example.go.id/cek" in receipt and "@media print" in receipt
    # Twice more (a double click, a second tab): the same receipt, nothing new.
    for _ in range(2):
        second = await client.post(f'/staff/letters/{state["id"]}',
                                   data={**values, "action": "confirm"})
        assert TID.search(await second.text()).group(1) == shown.group(1)  # type: ignore[union-attr]
    assert await gw.intake.count_complaints() == 1

    assert gw.relay is not None
    await gw.relay.publish_batch()
    await gw.relay._close()
    [msg] = await drain(settings.broker.queue, 1)
    assert msg.routing_key == "complaint.created.letter"
    event = json.loads(msg.body)
    assert event["tracking_id"] == tid and event["channel"] == "letter"
    assert event["title"] == corrected
    assert event["body"] == truth.body
    assert event["reporter"]["nik"] == truth.nik
    assert event["reporter"]["name"] == truth.sender_name
    assert event["reporter"]["phone"] == truth.phone_e164
    assert event["agency"] == (truth.addressee or None)
    [att] = event["attachments"]
    assert att["sha256"] == hashlib.sha256(letter.data).hexdigest()
    assert att["media_type"] == "application/pdf" and att["filename"] == "letter-05.pdf"
    assert await gw.files.read(att["sha256"]) == letter.data
    source = event["source"]
    assert source["entered_by"] == "budi" and source["letter_draft_id"] == state["id"]
    assert source["provider_message_id"] == f'letter-draft:{state["id"]}'
    assert source["letter_date"] == truth.letter_date and source["pages"] == "2"
    assert source["nik_checked"] == "ktp"
    # The reviewed letter is stored as the raw message, parsed by the registered parser.
    assert gw.parsers.get("letter.review") is not None
    [raw] = await opened_raw(gw.engine, gw.keys)
    assert raw["parser"] == "letter.review" and raw["channel"] == "letter"
    assert raw["provider_message_id"] == f'letter-draft:{state["id"]}'
    assert raw["status"] == "accepted" and raw["tracking_id"] == tid
    # The body is kept in the row when small, else in the file store under its hash.
    reviewed = json.loads(raw["body"] or await gw.files.read(raw["sha256"]))
    assert reviewed["draft_id"] == state["id"] and reviewed["values"]["subject"] == corrected


async def test_receipt_also_goes_by_sms_when_the_letter_gives_a_mobile_number(
    letter_settings: Settings, aiohttp_client: Client
) -> None:
    sms = letter_settings.sms.model_copy(
        update={"kannel_sendsms_url": "http://127.0.0.1:9/cgi-bin/sendsms"}  # never reached here
    )
    web_section = letter_settings.web.model_copy(update={"csrf_key": SecretStr("k")})
    gateway = bootstrap.build(letter_settings.model_copy(update={"sms": sms, "web": web_section}))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        await add_staff(StaffStore(gateway.engine, gateway.settings.letter), "budi")
        token = await login(client, "budi")
        batch = await upload(client, token, [("a.png", small_scan()), ("b.png", small_scan())])
        letters = (await wait_until_read(client, batch))["letters"]
        base = {"csrf": token, "sender_name": "Siti Aminah", "kind": "pengaduan",
                "body": "Jalan di depan pasar berlubang besar sejak dua bulan.",
                "action": "confirm"}
        for letter, phone in zip(letters, ("0812-3456-7890", "022-4231234"), strict=True):
            for _ in range(2):  # confirmed twice: one SMS
                resp = await client.post(letter["review_url"], data={**base, "phone": phone})
                assert resp.status == 200
        mobile = await (await client.get(letters[0]["review_url"] + "/receipt")).text()
        landline = await (await client.get(letters[1]["review_url"] + "/receipt")).text()
        assert "SMS +62812" in mobile and "7890" not in mobile.split("SMS +62812")[1][:8]
        tids = [tracking.normalize(TID.search(page).group(1))  # type: ignore[union-attr]
                for page in (mobile, landline)]
        # The landline's receipt names no SMS acknowledgement (its random tracking ID, shown
        # twice, may itself spell "SMS": it is taken out first).
        receipt = landline.split('id="receipt"')[1].split("</article>")[0]
        shown = TID.search(landline).group(1)  # type: ignore[union-attr]
        assert "SMS" not in receipt.replace("Kirim SMS", "").replace(shown, "").replace(
            str(tids[1]), "")
        async with gateway.engine.connect() as conn:
            rows = (await conn.exec_driver_sql(
                "SELECT kind, status, bridge, tracking_id, body FROM sms_replies "
                f"WHERE tracking_id IN ('{tids[0]}', '{tids[1]}')")).all()
        [(kind, status, bridge, tid, body)] = rows  # one SMS, to the mobile number only
        assert (kind, status, bridge, tid) == ("receipt", "pending", "kannel", tids[0])
        assert f"CEK {tid}" in body
    finally:
        await gateway.close()


async def test_a_confirmation_recorded_by_the_next_one_says_the_sms_was_sent_too(
    letter_settings: Settings, aiohttp_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two letters with a mobile number, each committed by the intake and not recorded on its
    # draft: the first request failed recording it (the SMS was queued), the second crashed
    # before even queueing the SMS. Another clerk's confirmation records each: its receipt
    # names the SMS like any other, and each citizen gets one SMS.
    from channels.letter.routes import LetterDesk

    sms = letter_settings.sms.model_copy(
        update={"kannel_sendsms_url": "http://127.0.0.1:9/cgi-bin/sendsms"}  # never reached here
    )
    web_section = letter_settings.web.model_copy(update={"csrf_key": SecretStr("k")})
    gateway = bootstrap.build(letter_settings.model_copy(update={"sms": sms, "web": web_section}))
    try:
        client = await aiohttp_client(bootstrap.build_app(gateway))
        store = StaffStore(gateway.engine, gateway.settings.letter)
        await add_staff(store, "budi")
        await add_staff(store, "ani", Role.SUPERVISOR)
        token = await login(client, "budi")
        batch = await upload(client, token, [("a.png", small_scan()), ("b.png", small_scan())])
        letters = (await wait_until_read(client, batch))["letters"]
        real_confirmed, real_ack = DraftStore.confirmed, LetterDesk._acknowledge

        async def not_recorded(*_args: Any, **_kwargs: Any) -> None:
            raise OSError("database away after the intake's commit")

        async def crashed(*_args: Any, **_kwargs: Any) -> list[str]:
            raise OSError("the process died after the intake's commit")

        cases = (("confirmed", "0812-3456-7890", "Jalan di depan pasar berlubang besar."),
                 ("ack", "0813-2222-4444", "Lampu jalan di gang mati sejak sebulan."))
        for letter, (broken, phone, body) in zip(letters, cases, strict=True):
            if broken == "confirmed":
                monkeypatch.setattr(DraftStore, "confirmed", not_recorded)
            else:
                monkeypatch.setattr(LetterDesk, "_acknowledge", crashed)
            lost = await client.post(letter["review_url"], data={
                **VALID, "csrf": token, "phone": phone, "body": body, "action": "confirm"})
            assert lost.status == 503
            monkeypatch.setattr(DraftStore, "confirmed", real_confirmed)
            monkeypatch.setattr(LetterDesk, "_acknowledge", real_ack)
        assert await gateway.intake.count_complaints() == 2
        async with gateway.engine.begin() as conn:  # budi's holds run out
            await conn.execute(letter_drafts.update().values(
                claim_expires=letter_drafts.c.created_at))

        async with await aiohttp_client_like(client) as ani:
            ani_token = await login(ani, "ani")
            for letter in letters:
                late = await ani.post(letter["review_url"], data={
                    **VALID, "csrf": ani_token, "subject": "Versi ani", "action": "confirm"},
                    allow_redirects=False)
                assert late.headers["Location"].endswith("/receipt?not_sent=1")
        tids = []
        for letter in letters:
            receipt = await (await client.get(letter["review_url"] + "/receipt")).text()
            assert "Pemberitahuan juga dikirim ke: SMS +6281" in receipt, receipt
            tids.append(tracking.normalize(TID.search(receipt).group(1)))  # type: ignore[union-attr]
        async with gateway.engine.connect() as conn:
            rows = (await conn.exec_driver_sql(
                "SELECT tracking_id FROM sms_replies WHERE kind = 'receipt'")).scalars().all()
        assert sorted(rows) == sorted(tids)  # one SMS each
    finally:
        await gateway.close()


# ---- the front desk at a busy counter ---------------------------------------------------------

BASED_ON = re.compile(r'name="based_on" value="([^"]*)"')
VALID = {
    "sender_name": "Siti Aminah", "kind": "pengaduan", "subject": "Jalan berlubang",
    "body": "Jalan di depan pasar berlubang besar sejak dua bulan.",
}


async def ready_letter(client: Any, token: str, name: str = "a.png") -> str:
    """Upload a small page and wait until it is read; its review address."""
    batch = await upload(client, token, [(name, small_scan("PNG", name))])
    [letter] = (await wait_until_read(client, batch))["letters"]
    assert letter["status"] == "ready"
    return str(letter["review_url"])


def based_on(html: str) -> str:
    found = BASED_ON.search(html)
    assert found, "the review form says which saved values it was drawn from"
    return found.group(1)


async def test_two_people_on_one_letter_never_overwrite_each_other_unawares(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    # The clerk budi uploaded the letter; the supervisor ani helps with the queue. Both open it.
    budi_token = await login(client, "budi")
    review = await ready_letter(client, budi_token)
    async with await aiohttp_client_like(client) as ani:
        await _two_people(client, ani, gw, budi_token, review)


async def _two_people(
    client: TestClient[Any, Any], ani: ClientSession, gw: bootstrap.Gateway, budi_token: str,
    review: str,
) -> None:
    ani_token = await login(ani, "ani")
    budi_form = based_on(await (await client.get(review)).text())
    ani_form = based_on(await (await ani.get(review)).text())
    assert budi_form == ani_form

    # budi saves a correction; ani, on her page drawn before it, confirms with her own: nothing
    # is written or sent, and her page comes back with budi's value beside the subject.
    saved = await client.post(review, data={**VALID, "csrf": budi_token, "based_on": budi_form,
                                            "subject": "Jalan berlubang (budi)", "action": "save"},
                              allow_redirects=False)
    assert saved.status == 303
    clash = await ani.post(review, data={**VALID, "csrf": ani_token, "based_on": ani_form,
                                         "subject": "Jalan berlubang (ani)", "action": "confirm"})
    html = await clash.text()
    assert clash.status == 409 and "diubah oleh budi" in html
    assert 'id="subject-theirs"' in html and "Jalan berlubang (budi)" in html
    assert 'value="Jalan berlubang (ani)"' in html  # what she typed is still on her page
    assert await gw.intake.count_complaints() == 0
    drafts = DraftStore(gw.engine, gw.keys)
    draft_id = review.rsplit("/", 1)[1]
    assert (await drafts.get(draft_id)).values["subject"] == "Jalan berlubang (budi)"  # type: ignore[union-attr]

    # Having seen it, she confirms her version: it is sent, and the receipt shows it.
    sent = await ani.post(review, data={**VALID, "csrf": ani_token, "based_on": based_on(html),
                                        "subject": "Jalan berlubang (ani)", "action": "confirm"},
                          allow_redirects=False)
    assert sent.status == 303 and sent.headers["Location"] == f"{review}/receipt"
    # budi confirms from his page, not knowing: his values are not sent, and he is told so.
    late = await client.post(review, data={**VALID, "csrf": budi_token, "based_on": budi_form,
                                           "subject": "Jalan berlubang (budi)",
                                           "action": "confirm"}, allow_redirects=False)
    assert late.status == 303 and late.headers["Location"] == f"{review}/receipt?not_sent=1"
    told = await (await client.get(late.headers["Location"])).text()
    assert 'id="notice"' in told and "sudah dikonfirmasi oleh ani" in told
    assert "TIDAK dipakai" in told and "Jalan berlubang (ani)" in told
    plain = await (await client.get(f"{review}/receipt")).text()
    assert 'id="notice"' not in plain
    assert await gw.intake.count_complaints() == 1
    [raw] = await opened_raw(gw.engine, gw.keys)
    body = json.loads(raw["body"] or await gw.files.read(raw["sha256"]))
    assert body["values"]["subject"] == "Jalan berlubang (ani)" and body["entered_by"] == "ani"


async def test_confirmations_sent_at_once_send_one_letter_and_the_receipt_shows_it(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    budi_token = await login(client, "budi")
    async with await aiohttp_client_like(client) as ani:
        await _at_once(client, ani, gw, budi_token)


async def _at_once(
    client: TestClient[Any, Any], ani: ClientSession, gw: bootstrap.Gateway, budi_token: str
) -> None:
    ani_token = await login(ani, "ani")
    # Two people confirm other values in the same moment: one is sent, the other is refused
    # (409) with nothing sent, and the receipt shows what was sent.
    review = await ready_letter(client, budi_token, "a.png")
    form = based_on(await (await client.get(review)).text())
    answers = await asyncio.gather(
        client.post(review, data={**VALID, "csrf": budi_token, "based_on": form,
                                  "subject": "Versi budi", "action": "confirm"},
                    allow_redirects=False),
        ani.post(review, data={**VALID, "csrf": ani_token, "based_on": form,
                               "subject": "Versi ani", "action": "confirm"},
                 allow_redirects=False),
    )
    # The loser is refused (409), or, when it read the letter after the winner confirmed it,
    # led to the receipt with the notice that its values were not sent.
    outcomes = [(a.status, "not_sent=1" in a.headers.get("Location", "")) for a in answers]
    assert sorted(outcomes) in ([(303, False), (409, False)], [(303, False), (303, True)])
    winner = "Versi budi" if outcomes[0] == (303, False) else "Versi ani"
    receipt = await (await client.get(f"{review}/receipt")).text()
    assert f"<dd>{winner}</dd>" in receipt
    [raw] = await opened_raw(gw.engine, gw.keys)
    body = json.loads(raw["body"] or await gw.files.read(raw["sha256"]))
    assert body["values"]["subject"] == winner
    # A double click on Konfirmasi (the same values twice at once): one letter, one receipt.
    second = await ready_letter(client, budi_token, "b.png")
    form = based_on(await (await client.get(second)).text())
    twice = await asyncio.gather(*(
        client.post(second, data={**VALID, "csrf": budi_token, "based_on": form,
                                  "subject": "Sekali saja", "action": "confirm"},
                    allow_redirects=False)
        for _ in range(2)
    ))
    assert [a.headers["Location"] for a in twice] == [f"{second}/receipt"] * 2
    assert await gw.intake.count_complaints() == 2


async def test_the_first_field_in_error_has_the_focus(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    token = await login(client, "budi")
    review = await ready_letter(client, token)
    wrong = await client.post(review, data={**VALID, "csrf": token, "nik": "3209014101900000",
                                            "body": "pendek", "action": "confirm"})
    html = await wrong.text()
    assert wrong.status == 422 and 'id="nik-err"' in html and 'id="body-err"' in html
    # The keyboard is on the NIK (the first of the two, in the order of the form), and the page
    # is scrolled to it, not left at the top with a general "check the marked fields".
    assert html.count(" autofocus") == 1
    assert re.search(r'<input type="text" id="nik"[^>]* autofocus', html), html
    # The error is said once, not again as the NIK's region.
    assert html.count("tidak boleh 0000") == 1 and 'id="nik-region"' not in html


async def test_a_form_sent_after_the_session_ended_leads_back_to_the_letter(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    token = await login(client, "budi")
    review = await ready_letter(client, token)
    # An hour at the counter without a request: the session is over.
    async with gw.engine.begin() as conn:
        await conn.exec_driver_sql(
            "UPDATE staff_sessions SET last_seen_at = created_at - INTERVAL '2 hours'"
            if gw.engine.dialect.name == "postgresql"
            else "UPDATE staff_sessions SET last_seen_at = datetime(created_at, '-2 hours')"
        )
    sent = await client.post(review, data={**VALID, "csrf": token, "action": "confirm"})
    html = await sent.text()
    # Not a bare "form expired": the login form itself, saying why, leading back to the letter.
    assert sent.status == 403 and "Sesi Anda sudah berakhir" in html
    assert f'name="next" value="{review}"' in html and 'id="username"' in html
    assert await gw.intake.count_complaints() == 0
    again = await client.post(
        "/staff/login",
        data={"csrf": csrf_token(html), "username": "budi", "password": PASSWORD, "next": review},
        allow_redirects=False,
    )
    assert again.status == 303 and again.headers["Location"] == review
    # The same from the upload form and the "read again" button; in English too.
    client.session.cookie_jar.clear()
    refused = await client.post(f"{review}/read-again?lang=en", data={"csrf": token})
    text = await refused.text()
    assert refused.status == 403 and "Your session has ended" in text
    assert f'name="next" value="{review}"' in text
    upload_refused = await client.post("/staff/letters", data=upload_form(token, []))
    assert 'name="next" value="/staff/"' in await upload_refused.text()
    # A double click on Keluar: the second finds no session and simply shows the login page.
    out = await client.post("/staff/logout", data={"csrf": token}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/staff/login"


async def test_the_receipt_and_the_desk_show_indonesian_time(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    token = await login(client, "budi")
    review = await ready_letter(client, token)
    done = await client.post(review, data={**VALID, "csrf": token, "action": "confirm"})
    receipt = await done.text()
    draft = await DraftStore(gw.engine, gw.keys).get(review.rsplit("/", 1)[1])
    assert draft is not None
    # What the citizen reads: the time of the status page (WIB), never UTC, which before 07:00
    # WIB is even another day.
    wib = draft.created_at.astimezone(timezone(timedelta(hours=7)))
    assert f"<dd>{wib:%d-%m-%Y %H:%M} WIB</dd>" in receipt and "UTC" not in receipt
    home = await (await client.get("/staff/")).text()
    assert f"{wib:%Y-%m-%d %H:%M} WIB" in home and "UTC" not in home
    # A clerk working in English prints the citizen an Indonesian receipt unless asked.
    receipt_url = f"{review}/receipt"
    await client.get("/staff/?lang=en")
    in_clerks_english = await (await client.get(receipt_url)).text()
    assert "Tanda Terima Laporan" in in_clerks_english and "Receipt in English" in in_clerks_english
    english = await (await client.get(f"{receipt_url}?receipt_lang=en")).text()
    assert "Report receipt" in english and f"<dd>{wib:%d-%m-%Y %H:%M} WIB</dd>" in english
    async with await aiohttp_client_like(client) as other:
        login_form = await (await other.get("/staff/login")).text()
    assert re.search(r'id="username"[^>]* autofocus', login_form)  # the clerk types at once


async def test_a_file_store_that_cannot_write_is_a_503_to_upload_again(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def full(chunks: AsyncIterator[bytes], max_size: int) -> tuple[str, int]:
        async for _ in chunks:
            break
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gw.files, "put_stream", full)
    token = await login(client, "budi")
    letter = sample("letter-01")
    resp = await client.post(
        "/staff/letters", data=upload_form(token, [(letter.filename, letter.data)]),
        allow_redirects=False,
    )
    html = await resp.text()
    assert resp.status == 503 and "Coba unggah lagi" in html  # not a 500: the clerk retries
    assert await draft_count(gw) == 0


async def test_a_save_while_the_letter_is_being_confirmed_is_not_lost_unawares(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # budi confirms; while the intake port commits (a slow database, RabbitMQ away), ani opens
    # the letter (drawn from budi's values, saved by his confirmation) and saves a correction.
    # The letter goes out with budi's values: ani must not be told hers were saved.
    budi_token = await login(client, "budi")
    review = await ready_letter(client, budi_token)
    form = based_on(await (await client.get(review)).text())
    entered, release = asyncio.Event(), asyncio.Event()
    accept = gw.intake.accept

    async def slow_accept(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await release.wait()
        return await accept(*args, **kwargs)

    monkeypatch.setattr(gw.intake, "accept", slow_accept)
    async with await aiohttp_client_like(client) as ani:
        ani_token = await login(ani, "ani")
        confirming = asyncio.ensure_future(client.post(
            review, data={**VALID, "csrf": budi_token, "based_on": form,
                          "subject": "Versi budi", "action": "confirm"},
            allow_redirects=False))
        await asyncio.wait_for(entered.wait(), 30)
        ani_form = based_on(await (await ani.get(review)).text())
        saved = await ani.post(review, data={**VALID, "csrf": ani_token, "based_on": ani_form,
                                             "subject": "Versi ani", "action": "save"},
                               allow_redirects=False)
        release.set()
        sent = await confirming
        assert sent.status == 303 and sent.headers["Location"] == f"{review}/receipt"
        html = await saved.text()
        # Not "saved": refused with what she typed still on her page.
        assert saved.status == 409, (saved.status, saved.headers.get("Location"))
        assert 'value="Versi ani"' in html and "sedang dikonfirmasi oleh budi" in html
    receipt = await (await client.get(f"{review}/receipt")).text()
    assert "<dd>Versi budi</dd>" in receipt
    assert await gw.intake.count_complaints() == 1


async def test_a_page_or_file_number_of_thousands_of_digits_is_not_found(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    # int() refuses more than 4300 digits: that was a 500 (a ValueError in the handler).
    token = await login(client, "budi")
    review = await ready_letter(client, token)
    for what in ("pages", "files"):
        resp = await client.get(f"{review}/{what}/{'9' * 5000}")
        assert resp.status == 404 and resp.headers["Cache-Control"] == "no-store"
    assert (await client.get(f"{review}/pages/1")).status == 200


async def test_a_confirmation_the_intake_could_not_take_holds_the_letter_no_longer(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gateway.errors import IntakeUnavailable

    budi_token = await login(client, "budi")
    review = await ready_letter(client, budi_token)
    form = based_on(await (await client.get(review)).text())

    async def away(*_args: Any, **_kwargs: Any) -> Any:
        raise IntakeUnavailable("database away")

    monkeypatch.setattr(gw.intake, "accept", away)
    busy = await client.post(review, data={**VALID, "csrf": budi_token, "based_on": form,
                                           "subject": "Versi budi", "action": "confirm"},
                             allow_redirects=False)
    assert busy.status == 503
    monkeypatch.undo()
    async with await aiohttp_client_like(client) as ani:
        ani_token = await login(ani, "ani")
        ani_form = based_on(await (await ani.get(review)).text())
        saved = await ani.post(review, data={**VALID, "csrf": ani_token, "based_on": ani_form,
                                             "subject": "Versi ani", "action": "save"},
                               allow_redirects=False)
        assert saved.status == 303 and saved.headers["Location"].endswith("?saved=1")


FAILED_HOLD = re.compile(r'name="failed_hold" value="([^"]*)"')


async def failed_with_the_database_away(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, token: str, review: str,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """budi confirms; the intake cannot take it, and the database is away for the hold's
    release too: the hold stays in the database. The 503 page, with his values."""
    from gateway.errors import IntakeUnavailable

    form = based_on(await (await client.get(review)).text())

    async def away(*_args: Any, **_kwargs: Any) -> Any:
        raise IntakeUnavailable("database away")

    async def release_away(*_args: Any, **_kwargs: Any) -> None:
        raise OSError("database away")

    with monkeypatch.context() as patched:
        patched.setattr(gw.intake, "accept", away)
        patched.setattr(DraftStore, "release", release_away)
        busy = await client.post(review, data={**VALID, "csrf": token, "based_on": form,
                                               "subject": "Versi budi", "action": "confirm"},
                                 allow_redirects=False)
    html = await busy.text()
    assert busy.status == 503 and 'value="Versi budi"' in html
    draft = await DraftStore(gw.engine, gw.keys).get(review.rsplit("/", 1)[1])
    assert draft is not None and draft.held_by == "budi" and draft.hold is not None
    return html


def retry_form(html: str, token: str, **values: str) -> dict[str, str]:
    """The form of a 503 page sent again: its hidden fields, ``values`` typed over."""
    failed = FAILED_HOLD.search(html)
    assert failed, "the page names the confirmation that failed"
    return {**VALID, "csrf": token, "based_on": based_on(html), "failed_hold": failed.group(1),
            **values}


async def test_a_letter_the_intake_could_not_take_is_corrected_and_saved_at_once(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    budi_token = await login(client, "budi")
    review = await ready_letter(client, budi_token)
    html = await failed_with_the_database_away(client, gw, budi_token, review, monkeypatch)
    async with await aiohttp_client_like(client) as ani:
        ani_token = await login(ani, "ani")
        ani_form = based_on(await (await ani.get(review)).text())
        # ani never saw budi's answer: for her the letter is still held by his confirmation.
        held = await ani.post(review, data={**VALID, "csrf": ani_token, "based_on": ani_form,
                                            "subject": "Versi ani", "action": "save"},
                              allow_redirects=False)
        assert held.status == 409 and "sedang dikonfirmasi oleh budi" in await held.text()
        # budi, on the page that told him, corrects a field and saves: saved at once, not
        # refused for two minutes as "being confirmed by budi".
        saved = await client.post(
            review, data=retry_form(html, budi_token, subject="Versi budi 2", action="save"),
            allow_redirects=False,
        )
        assert saved.status == 303, await saved.text()
        assert saved.headers["Location"].endswith("?saved=1")
        # That save ended the hold: ani, drawing her page again, saves too.
        ani_form = based_on(await (await ani.get(review)).text())
        theirs = await ani.post(review, data={**VALID, "csrf": ani_token, "based_on": ani_form,
                                              "subject": "Versi ani", "action": "save"},
                                allow_redirects=False)
        assert theirs.status == 303
    draft = await DraftStore(gw.engine, gw.keys).get(review.rsplit("/", 1)[1])
    assert draft is not None and draft.values["subject"] == "Versi ani" and draft.hold is None
    assert await gw.intake.count_complaints() == 0


async def test_a_clerk_cannot_end_another_clerks_hold_by_naming_it(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # failed_hold is a form field, the client's to write: ani naming budi's failed hold (seen,
    # say, over his shoulder), or an earlier release's guessable "confirm:budi", must not let
    # her save land under his hold.
    budi_token = await login(client, "budi")
    review = await ready_letter(client, budi_token)
    html = await failed_with_the_database_away(client, gw, budi_token, review, monkeypatch)
    budis = retry_form(html, budi_token)["failed_hold"]
    async with await aiohttp_client_like(client) as ani:
        ani_token = await login(ani, "ani")
        for named in (budis, "confirm:budi"):
            form = based_on(await (await ani.get(review)).text())
            tried = await ani.post(review, data={**VALID, "csrf": ani_token, "based_on": form,
                                                 "subject": "Versi ani", "action": "save",
                                                 "failed_hold": named},
                                   allow_redirects=False)
            assert tried.status == 409, named
    draft = await DraftStore(gw.engine, gw.keys).get(review.rsplit("/", 1)[1])
    assert draft is not None and draft.values["subject"] != "Versi ani"
    assert draft.hold == budis  # still budi's


async def test_a_letter_the_intake_could_not_take_is_confirmed_again_at_once_and_once(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    budi_token = await login(client, "budi")
    review = await ready_letter(client, budi_token)
    html = await failed_with_the_database_away(client, gw, budi_token, review, monkeypatch)
    # The database is back: budi corrects the subject and confirms again from that page. While
    # the intake commits it, the same page sent once more (a second click, another value
    # typed) does not get past the new confirmation's hold by naming the failed one.
    entered, release = asyncio.Event(), asyncio.Event()
    accept = gw.intake.accept

    async def slow_accept(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await release.wait()
        return await accept(*args, **kwargs)

    monkeypatch.setattr(gw.intake, "accept", slow_accept)
    confirming = asyncio.ensure_future(client.post(
        review, data=retry_form(html, budi_token, subject="Versi budi 2", action="confirm"),
        allow_redirects=False,
    ))
    waiting = asyncio.ensure_future(entered.wait())
    await asyncio.wait({confirming, waiting}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if confirming.done():  # refused without reaching the intake
        answer = confirming.result()
        pytest.fail(f"the confirmation was answered {answer.status}: {await answer.text()}")
    late = await client.post(
        review, data=retry_form(html, budi_token, subject="Versi budi 3", action="save"),
        allow_redirects=False,
    )
    told = await late.text()
    # Addressed to budi, whose own confirmation it is, not "being confirmed by budi".
    assert late.status == 409 and "Konfirmasi Anda sebelumnya" in told
    assert "dikonfirmasi oleh budi" not in told and "petugas lain" not in told
    release.set()
    sent = await confirming
    assert sent.status == 303 and sent.headers["Location"] == f"{review}/receipt"
    receipt = await (await client.get(f"{review}/receipt")).text()
    assert "<dd>Versi budi 2</dd>" in receipt
    assert await gw.intake.count_complaints() == 1


async def test_the_same_values_confirmed_by_two_clerks_at_once_are_not_called_unused(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # budi confirms; while his request waits for the intake, ani confirms the very same values
    # and hers is committed first. budi's values are the ones registered (they are the same):
    # he is not told above the receipt that they were NOT used.
    budi_token = await login(client, "budi")
    review = await ready_letter(client, budi_token)
    form = based_on(await (await client.get(review)).text())
    entered, release = asyncio.Event(), asyncio.Event()
    accept = gw.intake.accept

    async def first_waits(*args: Any, **kwargs: Any) -> Any:
        if not entered.is_set():
            entered.set()
            await release.wait()
        return await accept(*args, **kwargs)

    monkeypatch.setattr(gw.intake, "accept", first_waits)
    same = {**VALID, "based_on": form, "subject": "Versi yang sama", "action": "confirm"}
    async with await aiohttp_client_like(client) as ani:
        ani_token = await login(ani, "ani")
        confirming = asyncio.ensure_future(
            client.post(review, data={**same, "csrf": budi_token}, allow_redirects=False))
        await asyncio.wait_for(entered.wait(), 30)
        hers = await ani.post(review, data={**same, "csrf": ani_token}, allow_redirects=False)
        assert hers.status == 303 and hers.headers["Location"] == f"{review}/receipt"
        release.set()
        his = await confirming
    assert his.status == 303 and his.headers["Location"] == f"{review}/receipt"
    receipt = await (await client.get(his.headers["Location"])).text()
    assert "<dd>Versi yang sama</dd>" in receipt and 'id="notice"' not in receipt
    assert await gw.intake.count_complaints() == 1


def blank_pdf(pages: int) -> bytes:
    """A PDF of ``pages`` empty A4 pages (each its own object)."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count %d >>"
            % (b" ".join(b"%d 0 R" % (3 + i) for i in range(pages)), pages)]
    objs += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"] * pages
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, obj))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % o for o in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objs) + 1, xref))
    return out.getvalue()


async def test_a_scan_of_too_many_pages_is_told_to_be_split_not_called_damaged(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    # A bundle of 101 pages is not damaged: the clerk is told, in the page's language only,
    # to split it (it was "rusak atau tidak dapat dibaca (the document has ... split it)").
    token = await login(client, "budi")
    data = blank_pdf(101)
    assert count_pages(data) == 101
    refused = await client.post("/staff/letters", data=upload_form(token, [("tebal.pdf", data)]))
    html = await refused.text()
    assert refused.status == 422
    assert "Berkas tebal.pdf memuat lebih dari 100 halaman. Pisahkan" in html
    assert "rusak" not in html and "split" not in html
    en = await client.post("/staff/letters?lang=en",
                           data=upload_form(token, [("tebal.pdf", data)]))
    assert en.status == 422 and "The file tebal.pdf has more than 100 pages. Split" in await en.text()
    assert await draft_count(gw) == 0


async def test_a_confirmation_committed_but_not_recorded_is_recorded_by_the_next_one(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # budi's confirmation is committed by the intake, then recording it on the draft fails (the
    # database went away, the process died): the letter stays ready, with no tracking ID.
    budi_token = await login(client, "budi")
    review = await ready_letter(client, budi_token)
    draft_id = review.rsplit("/", 1)[1]
    form = based_on(await (await client.get(review)).text())
    real = DraftStore.confirmed
    failures: list[tuple[Any, ...]] = []

    async def fails_once(self: DraftStore, *args: Any, **kwargs: Any) -> None:
        if not failures:
            failures.append(args)
            raise OSError("database away after the intake's commit")
        await real(self, *args, **kwargs)

    monkeypatch.setattr(DraftStore, "confirmed", fails_once)
    lost = await client.post(review, data={**VALID, "csrf": budi_token, "based_on": form,
                                           "subject": "Versi budi", "action": "confirm"},
                             allow_redirects=False)
    assert lost.status == 503 and failures  # the gate answers a database error so
    assert await gw.intake.count_complaints() == 1
    drafts = DraftStore(gw.engine, gw.keys)
    assert (await drafts.get(draft_id)).tracking_id is None  # type: ignore[union-attr]
    async with gw.engine.begin() as conn:  # budi's hold runs out
        await conn.execute(letter_drafts.update().where(letter_drafts.c.id == draft_id)
                           .values(claim_expires=letter_drafts.c.created_at))

    # ani confirms other values: they are not sent, and the letter is recorded as confirmed by
    # budi with what budi sent, so its receipt can be printed.
    async with await aiohttp_client_like(client) as ani:
        ani_token = await login(ani, "ani")
        ani_form = based_on(await (await ani.get(review)).text())
        late = await ani.post(review, data={**VALID, "csrf": ani_token, "based_on": ani_form,
                                            "subject": "Versi ani", "action": "confirm"},
                              allow_redirects=False)
        assert late.status == 303 and late.headers["Location"] == f"{review}/receipt?not_sent=1"
        told = await ani.get(late.headers["Location"], allow_redirects=False)
        html = await told.text()
        assert told.status == 200 and TID.search(html)
        assert "sudah dikonfirmasi oleh budi" in html and "Versi budi" in html
    draft = await drafts.get(draft_id)
    assert draft is not None and draft.tracking_id is not None
    assert draft.values["subject"] == "Versi budi" and draft.confirmed_by_name == "budi"
    assert await gw.intake.count_complaints() == 1


# ---- what the desk says while a letter is held, and when the database is away ----------------

HELD = re.compile(r'<p class="alert" role="status" id="held">([^<]*)</p>')


async def test_the_review_page_says_who_is_confirming_the_letter_and_until_when(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from channels.dates import WIB

    # budi confirms; while the intake commits, ani opens the letter. Her page says so before
    # she types anything (before, she learned it only from a 409 after saving), and budi's
    # other tab speaks to budi himself.
    budi_token = await login(client, "budi")
    review = await ready_letter(client, budi_token)
    opened = await (await client.get(review)).text()
    assert not HELD.search(opened)  # nobody is confirming it yet
    entered, release = asyncio.Event(), asyncio.Event()
    accept = gw.intake.accept

    async def slow_accept(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await release.wait()
        return await accept(*args, **kwargs)

    monkeypatch.setattr(gw.intake, "accept", slow_accept)
    async with await aiohttp_client_like(client) as ani:
        ani_token = await login(ani, "ani")
        confirming = asyncio.ensure_future(client.post(
            review, data={**VALID, "csrf": budi_token, "based_on": based_on(opened),
                          "subject": "Versi budi", "action": "confirm"},
            allow_redirects=False))
        await asyncio.wait_for(entered.wait(), 30)
        draft = await DraftStore(gw.engine, gw.keys).get(review.rsplit("/", 1)[1])
        assert draft is not None and draft.held_until is not None
        end = f"{draft.held_until.astimezone(WIB):%H:%M:%S} WIB"
        page = await ani.get(review)
        held = HELD.search(await page.text())
        assert page.status == 200 and held, "ani's page says the letter is being confirmed"
        assert f"sedang dikonfirmasi oleh budi, paling lama sampai pukul {end}" in held.group(1)
        mine = HELD.search(await (await client.get(review)).text())  # budi's other tab
        assert mine and "Konfirmasi Anda sebelumnya" in mine.group(1) and end in mine.group(1)
        assert "dikonfirmasi oleh budi" not in mine.group(1)
        # ani saves anyway: refused, the value under the subject is what is being sent, not
        # something "saved by another clerk".
        refused = await ani.post(review, data={**VALID, "csrf": ani_token,
                                               "based_on": based_on(opened),
                                               "subject": "Versi ani", "action": "save"},
                                 allow_redirects=False)
        html = await refused.text()
        assert refused.status == 409 and f"paling lama sampai pukul {end}" in html
        assert "Isian yang sedang dikonfirmasi: Versi budi" in html
        assert "Tersimpan oleh petugas lain" not in html
        # Not "reload": reloading the answer to a form sends the form again.
        assert "Buka lagi surat ini sebentar lagi" in html and "Muat ulang" not in html
        english = HELD.search(await (await ani.get(f"{review}?lang=en")).text())
        assert english and f"budi is confirming this letter right now, until {end}" in (
            english.group(1))
        # budi's double click with another value: told it is his own confirmation.
        again = await client.post(review, data={**VALID, "csrf": budi_token,
                                                "based_on": based_on(opened),
                                                "subject": "Versi budi 2", "action": "save"},
                                  allow_redirects=False)
        html = await again.text()
        assert again.status == 409 and "Konfirmasi Anda sebelumnya" in html
        assert "dikonfirmasi oleh budi" not in html and "Tersimpan oleh petugas lain" not in html
        release.set()
        sent = await confirming
        assert sent.headers["Location"] == f"{review}/receipt"
    done = await client.get(review, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == f"{review}/receipt"


async def test_a_clerks_own_other_tab_is_not_called_another_clerk(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore
) -> None:
    # budi has the letter open in two tabs; he saves in one, then in the other.
    token = await login(client, "budi")
    review = await ready_letter(client, token)
    form = based_on(await (await client.get(review)).text())
    first = await client.post(review, data={**VALID, "csrf": token, "based_on": form,
                                            "subject": "Tab satu", "action": "save"},
                              allow_redirects=False)
    assert first.status == 303
    second = await client.post(review, data={**VALID, "csrf": token, "based_on": form,
                                             "subject": "Tab dua", "action": "save"})
    html = await second.text()
    assert second.status == 409 and "Anda sendiri mengubah surat ini di halaman lain" in html
    assert "Tersimpan dari halaman Anda yang lain: Tab satu" in html
    assert "diubah oleh budi" not in html and "petugas lain" not in html
    assert 'value="Tab dua"' in html


async def test_a_save_while_the_database_is_away_gives_the_form_back_with_what_was_typed(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without JavaScript, a bare "busy" page loses every correction typed: the form comes
    # back with them, as it does after a refused or conflicting save.
    token = await login(client, "budi")
    review = await ready_letter(client, token)
    draft_id = review.rsplit("/", 1)[1]
    form = based_on(await (await client.get(review)).text())
    typed = {**VALID, "csrf": token, "based_on": form, "subject": "Ketikan budi",
             "address": "Jl. Merdeka No. 5"}

    async def away(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError("database away")

    with monkeypatch.context() as patched:
        patched.setattr(DraftStore, "save", away)
        for action in ("save", "confirm"):
            busy = await client.post(review, data={**typed, "action": action})
            html = await busy.text()
            assert busy.status == 503 and busy.headers["Retry-After"] == "5"
            assert "isian Anda belum disimpan dan surat ini belum dikirim" in html
            assert 'id="review-form"' in html and 'value="Ketikan budi"' in html
            assert "Jl. Merdeka No. 5</textarea>" in html
            assert based_on(html) == form  # built on what it was built on
            assert f"/staff/letters/{draft_id}/pages/1" in html and "failed_hold" not in html
    assert await gw.intake.count_complaints() == 0
    # Sent again from that page once the database is back: saved.
    page = await (await client.post(review, data={**typed, "action": "save"})).text()
    assert "Draf disimpan." in page
    draft = await DraftStore(gw.engine, gw.keys).get(draft_id)
    assert draft is not None and draft.values["subject"] == "Ketikan budi"


async def test_a_form_sent_while_the_database_is_away_for_the_session_comes_back_too(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The database away from the start (the session cannot even be read, so neither can the
    # letter): the form back with what was typed, its hidden fields as sent; sent again once
    # the database is back, it saves.
    token = await login(client, "budi")
    review = await ready_letter(client, token)
    draft_id = review.rsplit("/", 1)[1]
    form = based_on(await (await client.get(review)).text())
    typed = {**VALID, "csrf": token, "based_on": form, "address": "Jl. Merdeka No. 5"}

    async def away(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError("database away")

    with monkeypatch.context() as patched:
        patched.setattr(StaffStore, "session", away)
        busy = await client.post(review, data={
            **typed, "subject": "Ketikan kedua", "failed_hold": "confirm:0a1b2c3d:budi",
            "action": "save"})
        html = await busy.text()
        assert busy.status == 503 and busy.headers["Retry-After"] == "5"
        assert busy.headers["Cache-Control"] == "no-store"
        assert 'id="review-form"' in html and 'value="Ketikan kedua"' in html
        assert "isian Anda belum disimpan" in html and csrf_token(html) == token
        assert based_on(html) == form and "Jl. Merdeka No. 5</textarea>" in html
        assert 'name="failed_hold" value="confirm:0a1b2c3d:budi"' in html
        assert f'action="/staff/letters/{draft_id}"' in html
        # Not a logged-in browser's form: the bare page, nothing echoed.
        async with await aiohttp_client_like(client) as stranger:
            bare = await stranger.post(review, data={**typed, "subject": "Orang lain"})
            text = await bare.text()
            assert bare.status == 503 and "Orang lain" not in text and "review-form" not in text
    again = await client.post(review, data={
        **typed, "csrf": csrf_token(html), "based_on": based_on(html), "subject": "Ketikan kedua",
        "action": "save"}, allow_redirects=False)
    assert again.status == 303 and again.headers["Location"].endswith("?saved=1")
    draft = await DraftStore(gw.engine, gw.keys).get(draft_id)
    assert draft is not None and draft.values["subject"] == "Ketikan kedua"


async def test_a_letter_sent_but_not_recorded_while_the_database_is_away_says_what_to_do(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    budi_token = await login(client, "budi")
    review = await ready_letter(client, budi_token)
    real = DraftStore.confirmed

    async def not_recorded(*_args: Any, **_kwargs: Any) -> None:
        raise OSError("database away after the intake's commit")

    # budi's own confirmation is committed and cannot be recorded on the draft: he is told the
    # letter went with these values and to confirm once more for the receipt.
    monkeypatch.setattr(DraftStore, "confirmed", not_recorded)
    lost = await client.post(review, data={**VALID, "csrf": budi_token,
                                           "subject": "Versi budi", "action": "confirm"})
    html = await lost.text()
    assert lost.status == 503 and "Surat ini sudah terkirim dengan isian di bawah" in html
    assert 'value="Versi budi"' in html and "failed_hold" not in html
    monkeypatch.setattr(DraftStore, "confirmed", real)
    again = await client.post(review, data={**VALID, "csrf": budi_token,
                                            "based_on": based_on(html),
                                            "subject": "Versi budi", "action": "confirm"},
                              allow_redirects=False)
    assert again.status == 303 and again.headers["Location"] == f"{review}/receipt"
    draft = await DraftStore(gw.engine, gw.keys).get(review.rsplit("/", 1)[1])
    assert draft is not None and draft.tracking_id is not None
    assert draft.values["subject"] == "Versi budi"
    assert await gw.intake.count_complaints() == 1


async def test_a_letter_found_sent_by_another_confirmation_while_the_database_is_away_says_so(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gateway.errors import IntakeUnavailable

    # budi's confirmation committed, not recorded on the draft; his hold runs out. ani
    # confirms other values, and the database is away again when her request goes to record
    # budi's: she is not sent to a receipt that sends her back to the letter with nothing
    # said, but told the letter went and what to do.
    budi_token = await login(client, "budi")
    second = await ready_letter(client, budi_token)
    real = DraftStore.confirmed

    async def not_recorded(*_args: Any, **_kwargs: Any) -> None:
        raise OSError("database away after the intake's commit")

    monkeypatch.setattr(DraftStore, "confirmed", not_recorded)
    lost = await client.post(second, data={**VALID, "csrf": budi_token,
                                           "subject": "Versi budi", "action": "confirm"})
    assert lost.status == 503
    monkeypatch.setattr(DraftStore, "confirmed", real)
    async with gw.engine.begin() as conn:
        await conn.execute(letter_drafts.update().values(claim_expires=letter_drafts.c.created_at))

    async def raw_away(*_args: Any, **_kwargs: Any) -> Any:
        raise IntakeUnavailable("database away")

    async with await aiohttp_client_like(client) as ani:
        ani_token = await login(ani, "ani")
        ani_form = based_on(await (await ani.get(second)).text())
        with monkeypatch.context() as patched:
            patched.setattr(gw.intake, "raw_body", raw_away)
            late = await ani.post(second, data={**VALID, "csrf": ani_token, "based_on": ani_form,
                                                "subject": "Versi ani", "action": "confirm"},
                                  allow_redirects=False)
        html = await late.text()
        assert late.status == 503, late.headers.get("Location")
        assert "Surat ini sudah terkirim lewat konfirmasi lain" in html
        assert "tekan Konfirmasi dan kirim sekali lagi" in html
        assert 'value="Versi ani"' in html and "failed_hold" not in html
        # Done as told, once the database is back: the receipt, saying her values were not
        # the ones sent.
        told = await ani.post(second, data={**VALID, "csrf": ani_token,
                                             "based_on": based_on(html),
                                             "subject": "Versi ani", "action": "confirm"},
                              allow_redirects=False)
        assert told.headers["Location"] == f"{second}/receipt?not_sent=1"
        receipt = await (await ani.get(told.headers["Location"])).text()
        assert "sudah dikonfirmasi oleh budi" in receipt and "<dd>Versi budi</dd>" in receipt
    assert await gw.intake.count_complaints() == 1


async def test_a_save_after_the_confirmations_hold_ran_out_is_shown_beside_what_was_sent(
    client: TestClient[Any, Any], gw: bootstrap.Gateway, staff: StaffStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # budi confirms; the intake port takes longer than the hold lasts (a slow database), so
    # ani, opening the letter then, finds it free and saves a correction: it lands. Then budi's
    # values are committed. Before, recording the confirmation wrote budi's values over ani's
    # and kept nothing of them, though she had been told "saved". Now the letter still goes out
    # with what budi confirmed (the receipt shows it), and ani's values are kept beside it, on
    # the receipt page, for both of them.
    budi_token = await login(client, "budi")
    review = await ready_letter(client, budi_token)
    draft_id = review.rsplit("/", 1)[1]
    form = based_on(await (await client.get(review)).text())
    entered, release = asyncio.Event(), asyncio.Event()
    accept = gw.intake.accept

    async def slow_accept(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await release.wait()
        return await accept(*args, **kwargs)

    monkeypatch.setattr(gw.intake, "accept", slow_accept)
    async with await aiohttp_client_like(client) as ani:
        ani_token = await login(ani, "ani")
        confirming = asyncio.ensure_future(client.post(
            review, data={**VALID, "csrf": budi_token, "based_on": form,
                          "subject": "Versi budi", "action": "confirm"},
            allow_redirects=False))
        await asyncio.wait_for(entered.wait(), 30)
        async with gw.engine.begin() as conn:  # the hold runs out while the intake is slow
            await conn.execute(
                letter_drafts.update()
                .where(letter_drafts.c.id == draft_id)
                .values(claim_expires=datetime.now(UTC) - timedelta(seconds=1))
            )
        ani_form = based_on(await (await ani.get(review)).text())
        saved = await ani.post(review, data={**VALID, "csrf": ani_token, "based_on": ani_form,
                                             "subject": "Versi ani", "action": "save"},
                               allow_redirects=False)
        assert saved.status == 303 and saved.headers["Location"].endswith("?saved=1")
        release.set()
        sent = await confirming
        assert sent.status == 303 and sent.headers["Location"] == f"{review}/receipt"
        # ani, opening the letter again, is led to the receipt, which says her values were
        # not sent and shows them.
        hers = await ani.get(review)
        html = await hers.text()
        assert str(hers.url).endswith(f"{review}/receipt")
        assert 'id="unsent"' in html and "Anda simpan" in html and "TIDAK ikut terkirim" in html
        assert '<tr id="subject-unsent">' in html
        assert "<td>Versi ani</td><td>Versi budi</td>" in html
        assert 'id="notice"' not in html
    receipt = await (await client.get(f"{review}/receipt")).text()
    assert "<dd>Versi budi</dd>" in receipt  # on the printed receipt: what was sent
    assert "disimpan oleh ani" in receipt and "<td>Versi ani</td>" in receipt
    english = await (await client.get(f"{review}/receipt?lang=en")).text()
    assert "were NOT sent" in english and "saved by ani" in english
    draft = await DraftStore(gw.engine, gw.keys).get(draft_id)
    assert draft is not None and draft.values["subject"] == "Versi budi"
    assert draft.unsent is not None and draft.unsent["subject"] == "Versi ani"
    [raw] = await opened_raw(gw.engine, gw.keys)
    body = json.loads(raw["body"] or await gw.files.read(raw["sha256"]))
    assert body["values"]["subject"] == "Versi budi"
    assert await gw.intake.count_complaints() == 1
