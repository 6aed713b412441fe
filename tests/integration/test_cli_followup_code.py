"""``lapor-gateway status show --code`` for a report still in quarantine."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import tracking
from gateway.cli import main
from gateway.settings import load_settings
from tests.integration.test_cli import _quarantine_one, env  # noqa: F401 (fixture)


def test_status_show_code_of_a_quarantined_message_is_its_receipts_code(
    env: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    """A report still in quarantine was told its tracking ID and code on its receipt: the help
    desk's ``status show --code`` for that ID prints the same code."""
    import asyncio

    from gateway import bootstrap

    assert main(["migrate"]) == 0
    tid = _quarantine_one()
    capsys.readouterr()
    assert main(["status", "show", "--code", tid]) == 0
    out = capsys.readouterr().out.splitlines()
    gw = bootstrap.build(load_settings())
    code = tracking.display_code(gw.intake.followup_code(tid))
    asyncio.run(gw.close())
    assert f"  follow-up code: {code}" in out, out
