"""A file store that cannot take a file (its disk full, or read-only) is the server's trouble:
the citizen's attachment is answered 503 with a message to send again, never a 500, and what
was typed comes back on the form."""

from __future__ import annotations

import errno
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from gateway import bootstrap
from tests.channels.web.conftest import csrf_token
from tests.support import png

pytestmark = pytest.mark.integration

Client = Callable[..., Awaitable[TestClient[Any, Any]]]


def full_disk(gw: bootstrap.Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(chunks: AsyncIterator[bytes], max_size: int) -> tuple[str, int]:
        async for _ in chunks:
            raise OSError(errno.ENOSPC, "No space left on device")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gw.files, "put_stream", refuse)


async def test_the_api_answers_503_to_send_again(
    gw: bootstrap.Gateway, aiohttp_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    full_disk(gw, monkeypatch)
    client = await aiohttp_client(bootstrap.build_app(gw))
    fd = FormData()
    fd.add_field("complaint", json.dumps({"body": "Jalan rusak di depan pasar"}))
    fd.add_field("attachments", png("jalan"), filename="jalan.png", content_type="image/png")
    resp = await client.post("/api/v1/complaints", data=fd, headers={"Accept-Language": "en"})
    problem = await resp.json()
    assert resp.status == 503 and resp.headers["Retry-After"]
    assert resp.content_type == "application/problem+json"
    assert "send again" in problem["detail"] and problem["field"] == "attachments"
    assert await gw.intake.count_complaints() == 0


async def test_the_form_answers_503_and_keeps_what_was_typed(
    gw: bootstrap.Gateway, aiohttp_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    full_disk(gw, monkeypatch)
    client = await aiohttp_client(bootstrap.build_app(gw))
    token = csrf_token(await (await client.get("/")).text())
    fd = FormData()
    for key, value in {"csrf": token, "judul": "Jalan berlubang", "isi": "Jalan Siliwangi rusak",
                       "klasifikasi": "pengaduan"}.items():
        fd.add_field(key, value)
    fd.add_field("lampiran", png("jalan"), filename="jalan.png", content_type="image/png")
    resp = await client.post("/", data=fd)
    html = await resp.text()
    assert resp.status == 503 and resp.headers.get("Retry-After") == "5"  # as the API's
    assert 'id="lampiran-err"' in html and "Coba kirim lagi" in html
    assert 'value="Jalan berlubang"' in html and "Jalan Siliwangi rusak" in html
    assert await gw.intake.count_complaints() == 0



async def test_kept_files_on_a_store_that_cannot_be_written_are_still_used(
    gw: bootstrap.Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = await gw.files.put_bytes(png("kept"))

    def read_only(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("gateway.filestore.os.utime", read_only)
    assert await gw.files.touch(sha) is True  # there, though its mtime cannot be set
    assert await gw.files.touch("0" * 64) is False  # absent is still absent
