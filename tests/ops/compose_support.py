"""The production stack as the tests in ``tests/ops`` see it: each service of
``docker-compose.yml`` with the environment its container gets.

The compose file is read and interpolated with the helpers of ``tests/unit/test_compose.py``
(anchors and ``<<`` merges resolved, ``${...}`` substituted the way Compose does). The ``.env``
here holds a value of the right shape for every required variable (the example's,
``config/compose.env.example``, where it has one): the data and identity keys
are real 32-byte base64 keys, so the gateway's own checks of them pass and what is left to fail
is what the compose file gives or leaves out. A container's environment is the image's ``ENV``
(the Dockerfile's final stage) overlaid with the service's ``environment``, as Docker does.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.unit.test_compose import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    _all_strings,
    dockerfile_env,
    environment,
    interpolate,
    variables,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "gateway.toml"
GATEWAYS = ("gateway-1", "gateway-2")
# Settings whose value must be a key: 32 random bytes in base64 (gateway/crypto.py).
KEY_SETTINGS = ("LAPOR_SECURITY__IDENTITY_KEY", "LAPOR_SECURITY__DATA_KEY")
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_]\w*)")


@cache
def raw() -> dict[str, Any]:
    """The compose file as YAML data, not interpolated."""
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@cache
def dotenv() -> dict[str, str]:
    """An ``.env`` for the stack: every required variable set, the keys real keys."""
    names = variables("\n".join(_all_strings(raw())))
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    # The example's value where it has one (an address is an address), else a placeholder.
    env = {
        name: example.get(name) or f"ops-{name.lower()}"
        for name, ops in names.items()
        if ":?" in ops
    }
    for service in raw()["services"].values():
        for key, value in environment(service).items():
            found = _VARIABLE.match(value)
            if key in KEY_SETTINGS and found:
                env[found["name"]] = base64.b64encode(os.urandom(32)).decode()
    return env


@cache
def compose() -> dict[str, Any]:
    """The compose file as Compose sees it with :func:`dotenv` beside it."""
    result: dict[str, Any] = interpolate(raw(), dotenv())
    return result


def service(name: str) -> dict[str, Any]:
    """One service of :func:`compose`."""
    found: dict[str, Any] = compose()["services"][name]
    return found


def container_env(name: str) -> dict[str, str]:
    """The environment of the service's container: the image's ``ENV``, then its own."""
    return {**dockerfile_env(), **environment(service(name))}


def lapor_env(name: str) -> dict[str, str]:
    """Only the gateway's settings (``LAPOR_...``) of :func:`container_env`."""
    return {k: v for k, v in container_env(name).items() if k.startswith("LAPOR_")}


def builds_the_gateway_image(spec: Mapping[str, Any]) -> bool:
    """Whether a service runs the image built from this repository's Dockerfile."""
    return "build" in spec
