"""Browser tests' support: Debian's Chromium driven by Playwright, and a gateway on a free port.

Playwright's own browser download is never used: the tests launch ``/usr/bin/chromium``, which
``scripts/install-system-packages`` installs. With ``SCREENSHOTS=1`` the tests write their
screenshots under ``docs/``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from gateway import bootstrap
from tests.support import require_system_package, serving_app

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Not a LAPOR_ variable: the settings loader refuses LAPOR_ names it does not know.
SCREENSHOTS = os.environ.get("SCREENSHOTS") == "1"


def require_chromium() -> Any:
    """Playwright's async API; skips the calling test module when it or Chromium is missing
    (fails it under ``REQUIRE_SYSTEM_PACKAGES=1``, see :func:`tests.support.system_package`)."""
    try:
        api = importlib.import_module("playwright.async_api")
    except ImportError:
        api = None
    require_system_package(api is not None, "Playwright", "pip install -e '.[test]'")
    require_system_package(shutil.which(CHROMIUM) is not None, "Debian chromium")
    return api


@contextlib.asynccontextmanager
async def serving(gateway: bootstrap.Gateway) -> AsyncIterator[str]:
    """Serve ``gateway``'s HTTP app on a free port; its base URL. Closes the gateway after."""
    try:
        async with serving_app(bootstrap.build_app(gateway)) as port:
            yield f"http://127.0.0.1:{port}"
    finally:
        await gateway.close()


@contextlib.asynccontextmanager
async def browser_page(profile: Path, width: int, height: int) -> AsyncIterator[Any]:
    """A page of a fresh headless Chromium profile with a ``width`` x ``height`` viewport."""
    api = require_chromium()
    async with api.async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=FLAGS, headless=True,
            viewport={"width": width, "height": height},
        )
        try:
            yield context.pages[0] if context.pages else await context.new_page()
        finally:
            await context.close()
