"""Fixtures of the web channel's tests: a gateway on the real services, helpers for the form."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from gateway import bootstrap
from gateway.settings import Settings
from tests.support import with_section

NIK = "3209014101900001"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
OPEN311_KEY = "o311-test-key"


def web_settings(settings: Settings, **web: Any) -> Settings:
    """``settings`` with a fixed CSRF key, an Open311 key and ``web`` overrides."""
    values: dict[str, Any] = {
        "csrf_key": SecretStr("test-csrf-key"),
        "open311_api_key": SecretStr(OPEN311_KEY),
        **web,
    }
    return with_section(settings, "web", **values)


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[bootstrap.Gateway]:
    gateway = bootstrap.build(web_settings(settings))
    yield gateway
    await gateway.close()


def csrf_token(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the form carries a CSRF token"
    return found.group(1)
