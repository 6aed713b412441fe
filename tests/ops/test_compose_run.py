"""``docker compose up``, played here without Docker: the `migrate` job, then both replicas.

Each gateway service runs its compose ``command`` through the ``lapor-gateway`` console script,
with exactly the environment its container gets (the image's ``ENV`` and the service's
``environment``, the secrets from a generated ``.env``), translated to this machine only where
it must be: the service names ``postgres`` and ``rabbitmq`` become 127.0.0.1 with a scratch
database and scratch exchange and queue names, ``/app`` (the image's working directory with its
settings file, and the shared ``filestore`` volume) becomes a temporary folder, and each replica
gets a free port instead of the container's 8080. Then, as Compose would:

- ``serve`` before the job refuses to start (the reason for ``service_completed_successfully``);
- the job migrates, and again on the next ``up``;
- both replicas become healthy by their compose health check and the image's own;
- a complaint posted to each is published; an attachment taken by one is served by the other
  (one file store); a form served by one is accepted by the other (one CSRF key);
- ``docker compose stop`` (SIGTERM) ends both, cleanly, within ``stop_grace_period``.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest
from sqlalchemy.engine import make_url

from tests.ops.compose_support import CONFIG, GATEWAYS, container_env, service
from tests.support import delete_topology, drain, free_port, pg_admin, png, status_names
from tests.unit.test_compose import exec_form, the

pytestmark = pytest.mark.integration

CONSOLE_SCRIPT = Path(sys.executable).with_name("lapor-gateway")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# Compose's health checks run every `interval` after `start_period`; a replica gets this long.
HEALTHY_WITHIN = 30.0


def _seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    found = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
    assert found, value
    return float(found[1]) * units[found[2]]


class Stack:
    """The compose services' environments, translated to this machine."""

    def __init__(self, tmp: Path, database: str, names: Mapping[str, str]) -> None:
        self.app = tmp / "app"  # the image's WORKDIR
        (self.app / "config").mkdir(parents=True)
        shutil.copy2(CONFIG, self.app / "config" / "gateway.toml")  # COPY config/ (allow-list)
        (self.app / "var" / "files").mkdir(parents=True)  # the image's VOLUME, owned by lapor
        self.database = database
        self.names = dict(names)
        self.ports = {name: free_port() for name in GATEWAYS}
        self.logs = tmp / "logs"
        self.logs.mkdir()

    def env(self, name: str) -> dict[str, str]:
        env = container_env(name)
        # PATH: the image's /opt/venv/bin is this test's virtualenv.
        env["PATH"] = f"{CONSOLE_SCRIPT.parent}:/usr/local/bin:/usr/bin:/bin"
        env["LANG"] = "C.UTF-8"
        for key, value in env.items():
            if value.startswith("/app/"):
                env[key] = str(self.app / value[len("/app/") :])
        db = make_url(env["LAPOR_DATABASE__URL"])
        assert (db.host, db.port) == ("postgres", 5432)
        env["LAPOR_DATABASE__URL"] = db.set(
            host="127.0.0.1", username="postgres", database=self.database
        ).render_as_string(hide_password=False)
        if "LAPOR_BROKER__URL" in env:
            broker = urlsplit(env["LAPOR_BROKER__URL"])
            assert (broker.hostname, broker.port) == ("rabbitmq", 5672)
            env["LAPOR_BROKER__URL"] = urlunsplit(broker._replace(netloc="guest@127.0.0.1:5672"))
            env["LAPOR_BROKER__PASSWORD"] = "guest"
            for key, value in self.names.items():
                env[f"LAPOR_BROKER__{key.upper()}"] = value
            # The status feed's queues of this test too, not the machine's defaults.
            for key, value in status_names(self.names).items():
                env[f"LAPOR_STATUS_FEED__{key.upper()}"] = value
        if name in self.ports:
            env["LAPOR_HTTP__PORT"] = str(self.ports[name])
        return env

    def command(self, name: str) -> list[str]:
        command = service(name)["command"]
        assert isinstance(command, list)
        return [str(CONSOLE_SCRIPT), *command]  # ENTRYPOINT ["lapor-gateway"] + command

    def run(self, name: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(name),
            env=self.env(name),
            cwd=self.app,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, name: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:  # the child keeps its own copy
            return subprocess.Popen(
                self.command(name), env=self.env(name), cwd=self.app, stdout=log, stderr=log
            )

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def healthcheck(self, name: str) -> int:
        """The service's compose health check, run in its container (port translated)."""
        test = service(name)["healthcheck"]["test"]
        assert test[0] == "CMD"
        port = self.ports[name]
        argv = [arg.replace("127.0.0.1:8080/", f"127.0.0.1:{port}/") for arg in test[1:]]
        return self._check(name, argv)

    def image_healthcheck(self, name: str) -> int:
        """The Dockerfile's HEALTHCHECK, run in the same container."""
        options, _, command = the("HEALTHCHECK").partition("CMD ")
        return self._check(name, exec_form(command))

    def _check(self, name: str, argv: list[str]) -> int:
        program = shutil.which(argv[0], path=self.env(name)["PATH"])
        assert program, f"{argv[0]} is not on the container's PATH"
        return subprocess.run(
            [program, *argv[1:]],
            env=self.env(name),
            cwd=self.app,
            capture_output=True,
            timeout=30,
            check=False,
        ).returncode


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    assert CONSOLE_SCRIPT.is_file(), "the console script of pyproject.toml is installed"
    database = f"lapor_compose_{uuid.uuid4().hex[:10]}"
    tag = uuid.uuid4().hex[:8]
    names = {
        "exchange": f"test.{tag}.lapor.intake",
        "queue": f"test.{tag}.routing-core",
        "dead_letter_exchange": f"test.{tag}.dlx",
        "dead_letter_queue": f"test.{tag}.dead",
    }
    await pg_admin(f'CREATE DATABASE "{database}"')
    try:
        yield Stack(tmp_path, database, names)
    finally:
        await delete_topology(names)
        await delete_topology(status_names(names))
        await pg_admin(f'DROP DATABASE "{database}" WITH (FORCE)')


async def _healthy(stack: Stack, name: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + HEALTHY_WITHIN
    while await asyncio.to_thread(stack.healthcheck, name) != 0:
        assert process.poll() is None, f"{name} exited: {stack.log(name)[-2000:]}"
        assert time.monotonic() < deadline, f"{name} not healthy: {stack.log(name)[-2000:]}"
        await asyncio.sleep(0.5)


async def _post_complaint(session: aiohttp.ClientSession, port: int, n: int) -> str:
    # README, "Try it once `make serve` runs".
    async with session.post(
        f"http://127.0.0.1:{port}/api/v1/complaints",
        json={
            "title": f"Jalan berlubang {n}",
            "body": f"Jalan Siliwangi nomor {n} depan pasar berlubang besar.",
            "reporter": {"name": "Siti", "phone": f"+62812345678{n:02d}"},
        },
        headers={"Idempotency-Key": f"compose-{n}"},
    ) as resp:
        assert resp.status == 202, await resp.text()
        body: dict[str, Any] = await resp.json()
    assert body["status"] == "accepted"
    return str(body["tracking_id"])


async def test_compose_up_runs_migrate_then_two_replicas(stack: Stack) -> None:
    migrate_spec = service("migrate")
    for name in GATEWAYS:
        assert service(name)["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    assert migrate_spec["restart"] == "no"

    # Without the job, a replica stops at once and says why.
    early = stack.run("gateway-1", timeout=60)
    assert early.returncode == 1, early.stderr
    assert "run `lapor-gateway migrate`" in early.stderr

    for _ in range(2):  # every `docker compose up` runs the job again
        job = stack.run("migrate")
        assert job.returncode == 0, job.stderr
        assert "database at migration" in job.stdout

    processes = {name: stack.start(name) for name in GATEWAYS}
    try:
        await asyncio.gather(*(_healthy(stack, n, p) for n, p in processes.items()))
        for name in GATEWAYS:
            assert await asyncio.to_thread(stack.image_healthcheck, name) == 0, name

        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            one, two = (stack.ports[name] for name in GATEWAYS)
            tracking = {await _post_complaint(session, port, n) for n, port in enumerate((one, two))}

            # An attachment taken by gateway-1, fetched by the routing core from gateway-2.
            form = aiohttp.FormData()
            form.add_field(
                "complaint",
                json.dumps(
                    {
                        "title": "Sampah menumpuk",
                        "body": "Sampah menumpuk di depan sekolah dasar sudah dua minggu.",
                        "reporter": {"name": "Ani", "phone": "+6281311112222"},
                    }
                ),
                content_type="application/json",
            )
            photo = png("compose")
            form.add_field("attachments", photo, filename="foto.png", content_type="image/png")
            async with session.post(
                f"http://127.0.0.1:{one}/api/v1/complaints",
                data=form,
                headers={"Idempotency-Key": "compose-attachment"},
            ) as resp:
                assert resp.status == 202, await resp.text()
                tracking.add((await resp.json())["tracking_id"])

            # The citizen form served by gateway-2, sent to gateway-1 by the load balancer.
            async with session.get(f"http://127.0.0.1:{two}/") as resp:
                assert resp.status == 200
                found = CSRF.search(await resp.text())
                assert found
            async with session.post(
                f"http://127.0.0.1:{one}/",
                data={
                    "csrf": found[1],
                    "klasifikasi": "pengaduan",
                    "judul": "Drainase tersumbat",
                    "isi": "Saluran air di Jalan Kenanga tersumbat sampah, banjir setiap hujan.",
                    "nama": "Dewi",
                    "hp": "081355556666",
                },
            ) as resp:
                page = await resp.text()
                assert resp.status == 200, page
            from_form = {t for t in re.findall(r"\b[2-9A-Z]{4}-[2-9A-Z]{5}\b", page)}
            assert len(from_form) == 1, page
            tracking.add(from_form.pop().replace("-", ""))

            messages = await drain(stack.names["queue"], 4)
            bodies = [json.loads(m.body) for m in messages]
            assert {b["tracking_id"] for b in bodies} == tracking
            (attachment,) = [a for b in bodies for a in b["attachments"]]
            token = stack.env("gateway-2")["LAPOR_STORAGE__FETCH_TOKEN"]
            async with session.get(
                f"http://127.0.0.1:{two}{attachment['href']}",
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                assert resp.status == 200
                assert resp.content_type == "image/png"
            assert list((stack.app / "var" / "files").rglob(attachment["sha256"]))

        # `docker compose stop`: SIGTERM, then SIGKILL after stop_grace_period.
        grace = _seconds(service("gateway-1")["stop_grace_period"])
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for name, process in processes.items():
            code = await asyncio.to_thread(process.wait, grace)
            assert code == 0, stack.log(name)[-2000:]
            assert '"stopping"' in stack.log(name)
            # As deployed, on the default event loop (uvloop): what the image installs.
            assert '"event_loop": "uvloop"' in stack.log(name)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            with suppress(subprocess.TimeoutExpired):
                process.wait(10)
