"""What the gateway replicas of ``docker-compose.yml`` need beyond valid settings.

``tests/unit/test_compose.py`` checks that the file is valid Compose and that each service's
environment loads as settings. These tests read it as the deployment it describes, the
replicas behind a reverse proxy on the host:

- each replica builds every part ``serve`` runs (keys, channels, letter desk) from exactly its
  compose environment, without a warning about a missing setting;
- the client address the per-address rate limit counts is the citizen's, not Docker's;
- the staff pages' session cookie stays on HTTPS; the letter receipt's QR code points at a
  public address;
- the containers have an init process, their health checks call a program their image has, and
  the image has Tesseract with the language the letter desk reads.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from urllib.parse import urlsplit

import pytest

from channels.web.abuse import client_address
from gateway import bootstrap
from gateway.settings import Settings, load_settings
from tests.ops.compose_support import (
    CONFIG,
    GATEWAYS,
    builds_the_gateway_image,
    compose,
    lapor_env,
    service,
)
from tests.unit.test_compose import dockerfile_instructions, final_stage

# Docker's default address pools (dockerd `default-address-pools`): docker0, then one /16 per
# user-defined network from 172.18 to 172.31, then /20s of 192.168.0.0/16. A Compose network
# gets one of them, and its gateway (the first address) is where docker-proxy connects from.
DOCKER_POOLS = (
    *(ipaddress.ip_network(f"172.{n}.0.0/16") for n in range(17, 32)),
    *(ipaddress.ip_network(f"192.168.{n}.0/20") for n in range(0, 256, 16)),
)
CITIZEN = "203.0.113.7"

# Programs the official images of the infrastructure services have.
IMAGE_PROGRAMS = {
    "postgres": {"pg_isready", "psql"},
    "rabbitmq": {"rabbitmq-diagnostics", "rabbitmqctl"},
}
# Tesseract language data Debian's tesseract-ocr package pulls in by itself.
TESSERACT_BUILTIN = {"eng", "osd"}


def settings_of(name: str) -> Settings:
    return load_settings(CONFIG, environ=lapor_env(name))


# --- the replicas start ------------------------------------------------------------------------


@pytest.mark.parametrize("name", GATEWAYS)
async def test_each_replica_builds_what_serve_runs_from_its_compose_environment(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``serve`` builds the keys, the file store, every channel and the letter desk from the
    settings before it listens; a key it needs and does not get stops it (PostgreSQL has no
    generated keys), a shared secret it does not get only warns (a random CSRF key per replica:
    forms served by one replica refused by the other). Neither may happen here."""
    settings = settings_of(name)
    assert not settings.database.is_sqlite
    with caplog.at_level(logging.WARNING):
        gateway = bootstrap.build(settings)
        try:
            bootstrap.build_app(gateway)
        finally:
            await gateway.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert gateway.relay is not None, "each replica publishes its outbox"
    assert gateway.ocr is not None, "the letter desk runs in the replicas"


# --- behind the reverse proxy ------------------------------------------------------------------


@pytest.mark.parametrize("name", GATEWAYS)
def test_behind_the_proxy_the_rate_limit_counts_each_citizen(name: str) -> None:
    """The replicas are published for a reverse proxy on the host. Docker's userland proxy
    connects to the container from the network's gateway address, the same for every request:
    unless that address is a trusted proxy, every citizen is one client, sharing one budget of
    ``web.rate_limit_requests`` a minute (and recorded as such in the raw messages)."""
    trusted = load_settings(CONFIG, environ=lapor_env(name)).web.trusted_proxies
    for pool in DOCKER_POOLS:
        gateway_address = str(next(pool.hosts()))
        assert client_address(gateway_address, [CITIZEN], trusted) == CITIZEN, pool
        # What a client wrote itself, left of what the proxy appended, is not believed.
        assert client_address(gateway_address, [f"198.51.100.9, {CITIZEN}"], trusted) == CITIZEN
    # A client reaching a published port straight from the internet is never a proxy.
    assert client_address(CITIZEN, ["198.51.100.9"], trusted) == CITIZEN
    for public in ("8.8.8.8", "203.0.113.1", "2001:db8::1"):
        address = ipaddress.ip_address(public)
        assert not any(address in net for net in trusted), public


@pytest.mark.parametrize("name", GATEWAYS)
def test_staff_session_cookie_is_sent_over_https_only(name: str) -> None:
    """The staff pages carry personal data and a supervisor's session: in production they are
    served over HTTPS (README, "Letters at the front desk"), their cookie marked Secure."""
    letter = settings_of(name).letter
    assert letter.enabled
    assert letter.cookie_secure


@pytest.mark.parametrize("name", GATEWAYS)
def test_letter_receipts_point_citizens_at_the_public_address(name: str) -> None:
    """The printed receipt's QR code and its "follow on the web" line are
    ``<letter.public_base_url>/cek``: the built-in default, http://127.0.0.1:8080, sends a
    citizen's phone to itself."""
    url = urlsplit(settings_of(name).letter.public_base_url)
    assert url.hostname not in ("127.0.0.1", "localhost", "::1", "0.0.0.0")
    assert url.scheme == "https"


@pytest.mark.parametrize("name", GATEWAYS)
def test_open311_discovery_names_the_public_address(name: str) -> None:
    """Without ``web.public_base_url``, discovery names the address the client asked with (its
    ``Host`` header behind the proxy): the same public address as the receipts, set once."""
    settings = settings_of(name)
    assert settings.web.public_base_url == settings.letter.public_base_url
    assert urlsplit(settings.web.public_base_url or "").scheme == "https"


# --- the containers ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", GATEWAYS)
def test_gateway_containers_run_under_an_init_process(name: str) -> None:
    """lapor-gateway would be PID 1: the tesseract child of an OCR worker that dies is handed to
    PID 1, which only an init process waits for."""
    assert service(name).get("init") is True


def _apt_packages() -> set[str]:
    """The packages the final stage installs with apt-get."""
    packages: set[str] = set()
    for word, args in final_stage():
        if word != "RUN":
            continue
        for command in args.split("&&"):
            tokens = command.split()
            if "apt-get" in tokens and "install" in tokens:
                packages |= {t for t in tokens[tokens.index("install") + 1 :] if not t.startswith("-")}
    return packages


def _base_image() -> str:
    instructions = dockerfile_instructions()
    args = dict(a.split("=", 1) for w, a in instructions if w == "ARG" and "=" in a)
    image = final_stage()[0][1].split()[0]
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], image)


def test_every_healthcheck_calls_a_program_its_image_has() -> None:
    """A health check whose program is missing (curl in a slim image) keeps the service
    unhealthy, and the replicas, waiting for `service_healthy`, never start."""
    for name, spec in compose()["services"].items():
        check = spec.get("healthcheck", {})
        if check.get("disable"):
            continue
        test = check["test"]
        assert test[0] == "CMD", f"{name}: exec form, no shell needed in the image"
        program = test[1]
        if builds_the_gateway_image(spec):
            assert _base_image().startswith("python:"), "python comes with the base image"
            assert program in {"python", "python3"} | _apt_packages(), f"{name}: {program}"
        else:
            repository = spec["image"].split(":")[0].split("/")[-1]
            assert program in IMAGE_PROGRAMS[repository], f"{name}: {program} in {spec['image']}"


@pytest.mark.parametrize("name", GATEWAYS)
def test_the_image_has_tesseract_with_the_letter_desks_language(name: str) -> None:
    letter = settings_of(name).letter
    assert letter.enabled
    packages = _apt_packages()
    assert "tesseract-ocr" in packages
    for language in set(letter.ocr_language.split("+")) - TESSERACT_BUILTIN:
        assert f"tesseract-ocr-{language}" in packages, language
