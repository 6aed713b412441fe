"""The production container setup: ``docker-compose.yml``, ``Dockerfile``, ``.dockerignore``.

No Docker engine runs where the tests run, so the files are checked by construction: the compose
file is parsed with PyYAML (anchors and ``<<`` merges resolved) and its ``${...}`` variables
interpolated the way Compose does; the gateway services' environment is loaded with the real
:func:`gateway.settings.load_settings`; the file is validated against the Compose Specification
JSON schema vendored in ``tests/unit/data`` (see ``SOURCES.md`` there); the health-check
one-liners are run against a local HTTP server.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest
import yaml
from sqlalchemy.engine import make_url

from gateway.settings import ENV_PREFIX, SECRET_KEYS, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / "config" / "compose.env.example"
CONFIG = ROOT / "config" / "gateway.toml"
SCHEMA = Path(__file__).resolve().parent / "data" / "compose-spec.json"

GATEWAYS = ("gateway-1", "gateway-2")
SERVICES = ("postgres", "rabbitmq", "migrate", *GATEWAYS)
SECRET_ENV = {f"{ENV_PREFIX}{s.upper()}__{k.upper()}" for s, k in SECRET_KEYS}
SECRETISH_KEY = re.compile(r"PASS|TOKEN|SECRET|_KEY$", re.IGNORECASE)

# --- Compose variable interpolation (the subset of the Compose Specification's syntax) ----------

_DOLLAR = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_]\w*))")
_BRACED = re.compile(r"(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.DOTALL)


class MissingVariable(Exception):
    """A ``${VAR:?message}`` whose variable is unset or empty."""


def _substitute(text: str, env: Mapping[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        if m["named"]:
            return env.get(m["named"], "")
        parts = _BRACED.fullmatch(m["braced"])
        if parts is None:
            raise ValueError(f"unsupported interpolation ${{{m['braced']}}}")
        name, op, arg = parts["name"], parts["op"], parts["arg"]
        value = env.get(name)
        is_set = value is not None and (value != "" or not (op or "").startswith(":"))
        if op in (None, ""):
            return value or ""
        if op.endswith("-"):
            return value if is_set and value is not None else arg
        if op.endswith("?"):
            if not is_set or value is None:
                raise MissingVariable(f"{name}: {arg}")
            return value
        return arg if is_set else ""  # "+" / ":+"

    return _DOLLAR.sub(one, text)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    """``node`` with every string value interpolated (Compose does not interpolate keys)."""
    if isinstance(node, str):
        return _substitute(node, env)
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    return node


def variables(text: str) -> dict[str, set[str]]:
    """Every variable referenced in ``text``, with the operators it is used with."""
    out: dict[str, set[str]] = {}
    for m in _DOLLAR.finditer(text):
        if m["named"]:
            out.setdefault(m["named"], set()).add("")
        elif m["braced"] is not None:
            parts = _BRACED.fullmatch(m["braced"])
            assert parts is not None, f"unsupported interpolation ${{{m['braced']}}}"
            out.setdefault(parts["name"], set()).add(parts["op"] or "")
    return out


def _all_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _all_strings(item)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _all_strings(value)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """The compose file as YAML data, anchors and merge keys resolved, not interpolated."""
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def dummy_env(raw: dict[str, Any]) -> dict[str, str]:
    """A value for each required variable; the others are left to their defaults.

    The values hold URL-special characters, to show the passwords survive being put in a URL;
    an address (``..._URL``) is an https URL.
    """
    names = variables("\n".join(_all_strings(raw)))
    return {
        name: f"https://{name.lower().replace('_', '-')}.example"
        if name.endswith("_URL")
        else f"dummy/{name.lower()}:p@ss%"
        for name, ops in names.items()
        if ":?" in ops
    }


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any], dummy_env: dict[str, str]) -> dict[str, Any]:
    """The compose file as Compose would see it with ``dummy_env`` in ``.env``."""
    result: dict[str, Any] = interpolate(raw, dummy_env)
    return result


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` (mapping or list form) as a dict of strings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


# --- Dockerfile parsing --------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        word, _, args = full.partition(" ")
        out.append((word.upper(), args.strip()))
    assert not pending, "Dockerfile ends with a continuation line"
    return out


def final_stage() -> list[tuple[str, str]]:
    """The instructions of the last stage (the image that runs)."""
    instructions = dockerfile_instructions()
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def dockerfile_env() -> dict[str, str]:
    """``ENV`` of the final stage."""
    env: dict[str, str] = {}
    for word, args in final_stage():
        if word == "ENV":
            for token in shlex.split(args):
                key, sep, value = token.partition("=")
                assert sep, f"ENV {token}: use the KEY=value form"
                env[key] = value
    return env


def exec_form(args: str) -> list[str]:
    """An instruction's JSON (exec) form; fails for the shell form."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def the(word: str) -> str:
    """The arguments of the final stage's only (or last) ``word`` instruction."""
    found = [args for w, args in final_stage() if w == word]
    assert found, f"the Dockerfile's final stage has no {word}"
    return found[-1]


def healthcheck_code(test: list[str]) -> str:
    """The Python source of a ``["CMD", "python", "-c", CODE]`` health check."""
    assert test[:3] == ["CMD", "python", "-c"] and len(test) == 4, test
    return test[3]


# --- the compose file: structure -----------------------------------------------------------------


def test_compose_specification_without_version_key(raw: dict[str, Any]) -> None:
    assert "version" not in raw
    assert raw["name"] == "lapor"
    assert set(raw["services"]) == set(SERVICES)


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck", {})
        if name == "migrate":
            # A one-shot job: the image's own HEALTHCHECK is switched off.
            assert check.get("disable") is True
            continue
        assert not check.get("disable"), name
        assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1, name
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name}: healthcheck.{key}"


def test_infrastructure_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    pg = services["postgres"]["healthcheck"]["test"]
    assert pg[:2] == ["CMD", "pg_isready"]
    # Over TCP: the temporary server of the first initialisation listens on the socket only.
    assert pg[pg.index("-h") + 1] == "127.0.0.1"
    assert services["rabbitmq"]["healthcheck"]["test"] == [
        "CMD",
        "rabbitmq-diagnostics",
        "-q",
        "ping",
    ]
    assert services["postgres"]["image"] == "postgres:16"
    assert re.fullmatch(r"rabbitmq:(3\.13|4\.\d+)-management", services["rabbitmq"]["image"])
    # RabbitMQ's data directory is named after the host: it must not change on recreate.
    assert services["rabbitmq"]["hostname"] == "rabbitmq"


def test_gateway_replicas_are_the_same_service_on_different_ports(
    compose: dict[str, Any],
) -> None:
    one, two = (compose["services"][name] for name in GATEWAYS)
    assert one["command"] == two["command"] == ["serve"]
    assert one["image"] == two["image"] == compose["services"]["migrate"]["image"]
    assert one["build"] == two["build"] == compose["services"]["migrate"]["build"]
    assert one["build"]["context"] == "."
    assert (ROOT / one["build"].get("dockerfile", "Dockerfile")).is_file()
    assert one["restart"] == two["restart"] == "unless-stopped"
    assert {k: v for k, v in one.items() if k != "ports"} == {
        k: v for k, v in two.items() if k != "ports"
    }
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"  # the string: an unquoted `no` would be YAML false


def test_published_ports_are_distinct_and_reach_the_http_port(compose: dict[str, Any]) -> None:
    published = []
    for name in GATEWAYS:
        service = compose["services"][name]
        settings = load_settings(CONFIG, environ={**dockerfile_env(), **environment(service)})
        (port,) = service["ports"]
        host_ip, host_port, container_port = port.rsplit(":", 2)
        assert int(container_port) == settings.http.port == 8080
        assert host_ip == "127.0.0.1"  # loopback unless GATEWAY_BIND_ADDRESS says otherwise
        published.append(int(host_port))
    assert sorted(published) == [8081, 8082]
    for name in ("postgres", "migrate"):
        assert "ports" not in compose["services"][name], f"{name} must stay on the private network"
    for port in compose["services"]["rabbitmq"].get("ports", []):
        assert str(port).startswith("127.0.0.1:"), "only the management UI, on loopback"


def test_depends_on_conditions(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in GATEWAYS:
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "rabbitmq": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "depends_on" not in services["postgres"]
    assert "depends_on" not in services["rabbitmq"]


def test_volumes_referenced_are_declared_and_used(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":", 1)[0]
            is_path = source.startswith(("/", ".", "~"))
            assert not is_path, f"{name}: bind mount {source}; production data uses named volumes"
            assert source in declared, f"{name}: volume {source!r} is not declared"
            used.add(source)
    assert used == declared == {"pgdata", "rabbitmq-data", "filestore"}
    targets = {
        name: {v.split(":")[1] for v in service.get("volumes", [])}
        for name, service in compose["services"].items()
    }
    assert "/var/lib/postgresql/data" in targets["postgres"]
    assert "/var/lib/rabbitmq" in targets["rabbitmq"]


# --- the compose file: gateway settings ----------------------------------------------------------


@pytest.mark.parametrize("name", GATEWAYS)
def test_gateway_environment_is_valid_settings(
    compose: dict[str, Any], dummy_env: dict[str, str], name: str
) -> None:
    env = environment(compose["services"][name])
    assert all(key.startswith(ENV_PREFIX) for key in env)
    assert SECRET_ENV <= set(env), "every secret is given"
    settings = load_settings(CONFIG, environ={**dockerfile_env(), **env})
    assert isinstance(settings, Settings)

    db = make_url(settings.database.effective_url())
    assert db.drivername == "postgresql+asyncpg"
    assert (db.username, db.host, db.port, db.database) == ("lapor", "postgres", 5432, "lapor")
    assert db.password == dummy_env["GATEWAY_DB_PASSWORD"]

    assert settings.broker.url == "amqp://lapor@rabbitmq:5672/"
    broker = urlsplit(settings.broker.effective_url())
    assert (broker.username, broker.hostname, broker.port) == ("lapor", "rabbitmq", 5672)
    assert broker.password is not None
    assert unquote(broker.password) == dummy_env["GATEWAY_MQ_PASSWORD"]

    assert settings.storage.fetch_token is not None
    assert settings.storage.fetch_token.get_secret_value() == dummy_env["GATEWAY_FETCH_TOKEN"]
    assert settings.http.host == "0.0.0.0"
    assert settings.outbox.enabled  # each replica runs a relay
    assert "dummy" not in json.dumps(settings.masked()), "secrets are masked"


def test_migrate_environment_is_valid_settings(
    compose: dict[str, Any], dummy_env: dict[str, str]
) -> None:
    env = environment(compose["services"]["migrate"])
    settings = load_settings(CONFIG, environ={**dockerfile_env(), **env})
    gateway = load_settings(
        CONFIG, environ={**dockerfile_env(), **environment(compose["services"]["gateway-1"])}
    )
    assert settings.database == gateway.database, "migrate upgrades the database serve uses"
    # Least privilege: the migration job gets neither the broker password nor the fetch token.
    assert settings.broker.password is None
    assert settings.storage.fetch_token is None


def test_file_store_is_one_named_volume_shared_by_the_replicas(compose: dict[str, Any]) -> None:
    volume_sources: set[str] = set()
    for name in GATEWAYS:
        service = compose["services"][name]
        settings = load_settings(CONFIG, environ={**dockerfile_env(), **environment(service)})
        store = PurePosixPath(settings.storage.file_store)
        assert store.is_absolute()
        mounts = {
            PurePosixPath(target): source
            for source, target in (v.split(":")[:2] for v in service["volumes"])
        }
        holding = [t for t in mounts if store == t or t in store.parents]
        assert len(holding) == 1, f"{name}: file store {store} is not on a volume"
        assert mounts[holding[0]] in (compose.get("volumes") or {})
        volume_sources.add(mounts[holding[0]])
        # Mounted on the image's VOLUME: Docker adds no anonymous volume beside it.
        assert str(holding[0]) in exec_form(the("VOLUME"))
    assert volume_sources == {"filestore"}


def test_database_and_broker_credentials_agree(raw: dict[str, Any]) -> None:
    services = raw["services"]
    gateway = environment(services["gateway-1"])
    postgres = environment(services["postgres"])
    rabbitmq = environment(services["rabbitmq"])
    db = make_url(gateway["LAPOR_DATABASE__URL"])
    assert postgres["POSTGRES_USER"] == db.username
    assert postgres["POSTGRES_DB"] == db.database
    assert postgres["POSTGRES_PASSWORD"] == gateway["LAPOR_DATABASE__PASSWORD"]
    broker = urlsplit(gateway["LAPOR_BROKER__URL"])
    assert rabbitmq["RABBITMQ_DEFAULT_USER"] == broker.username
    assert rabbitmq["RABBITMQ_DEFAULT_PASS"] == gateway["LAPOR_BROKER__PASSWORD"]
    assert broker.hostname in services and db.host in services


# --- the compose file: secrets -------------------------------------------------------------------


def test_secrets_appear_only_as_required_variables(raw: dict[str, Any]) -> None:
    required = re.compile(r"\$\{(?P<name>[A-Z][A-Z0-9_]*):\?[^}]+\}")
    checked = 0
    for name, service in raw["services"].items():
        for key, value in environment(service).items():
            if SECRETISH_KEY.search(key):
                assert required.fullmatch(value), f"{name}: {key} must be ${{VAR:?message}}"
                checked += 1
            elif "://" in value:
                assert urlsplit(value).password is None, f"{name}: {key} has a password"
    # 15 secrets x 2 replicas + migrate's database password + postgres + rabbitmq.
    assert checked == 33


def test_missing_secret_stops_compose(raw: dict[str, Any], dummy_env: dict[str, str]) -> None:
    for name in dummy_env:
        env = {k: v for k, v in dummy_env.items() if k != name}
        with pytest.raises(MissingVariable, match=name):
            interpolate(raw, env)
        with pytest.raises(MissingVariable, match=name):
            interpolate(raw, {**env, name: ""})  # empty counts as missing


def test_example_values_and_no_literal_secrets_in_the_compose_file() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert example, "the example assigns the required variables"
    for value in example.values():
        assert value not in text
    for word in ("guest", "postgres:postgres", "changeme", "password123"):
        assert word not in text.lower()


def test_every_compose_variable_is_documented_in_the_example(raw: dict[str, Any]) -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assigned = dict(re.findall(r"(?m)^([A-Z][A-Z0-9_]*)=(.*)$", text))
    commented = set(re.findall(r"(?m)^# ([A-Z][A-Z0-9_]*)=", text))
    used = variables("\n".join(_all_strings(raw)))
    assert used, "the compose file uses variables"
    for name, ops in used.items():
        # A LAPOR_ name without __ in the gateway's environment stops it at start.
        assert not name.startswith(ENV_PREFIX), name
        if ":?" in ops:
            assert assigned.get(name), f"{name}: required, must have a placeholder in the example"
        else:
            assert name in assigned or name in commented, f"{name} is not in the example"
    assert set(assigned) | commented <= set(used), "the example lists unused variables"


# --- the compose file: JSON schema ---------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification(
    compose: dict[str, Any],
) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    # The schema has teeth: a misspelt key and an unknown depends_on condition are refused.
    broken = copy.deepcopy(compose)
    broken["services"]["gateway-1"]["restrat"] = "always"
    broken["services"]["gateway-2"]["depends_on"]["migrate"]["condition"] = "service_done"
    assert len(list(validator.iter_errors(broken))) >= 2


# --- health checks, run for real ----------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    statuses: dict[str, int] = {}

    def do_GET(self) -> None:
        status = self.statuses.get(self.path, 404)
        body = json.dumps({"path": self.path}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_stub() -> Iterator[tuple[int, dict[str, int]]]:
    """A loopback HTTP server answering each path with the status set in the dict."""
    statuses: dict[str, int] = {}
    handler = type("Handler", (_Handler,), {"statuses": statuses})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], statuses
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _run_check(code: str, env: Mapping[str, str] | None = None) -> int:
    return subprocess.run(
        [sys.executable, "-c", code],
        env=None if env is None else {"PATH": "", **env},
        capture_output=True,
        timeout=30,
        check=False,
    ).returncode


def test_compose_gateway_healthcheck_follows_readyz(
    compose: dict[str, Any], http_stub: tuple[int, dict[str, int]]
) -> None:
    port, statuses = http_stub
    code = healthcheck_code(compose["services"]["gateway-1"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8080/readyz" in code
    code = code.replace(":8080/", f":{port}/")
    statuses["/readyz"] = 200
    assert _run_check(code) == 0
    statuses["/readyz"] = 503
    assert _run_check(code) != 0
    del statuses["/readyz"]
    assert _run_check(code) != 0


def test_dockerfile_healthcheck_follows_healthz_on_the_configured_port(
    http_stub: tuple[int, dict[str, int]],
) -> None:
    port, statuses = http_stub
    args = the("HEALTHCHECK")
    options, sep, command = args.partition("CMD ")
    assert sep and "--interval" in options
    code = healthcheck_code(["CMD", *exec_form(command)])
    assert "urllib" in code and "/healthz" in code
    statuses["/healthz"] = 200
    assert _run_check(code, {"LAPOR_HTTP__PORT": str(port)}) == 0
    statuses["/healthz"] = 500
    assert _run_check(code, {"LAPOR_HTTP__PORT": str(port)}) != 0


# --- Dockerfile and .dockerignore ----------------------------------------------------------------


def test_dockerfile_runs_lapor_gateway_serve_as_non_root() -> None:
    instructions = dockerfile_instructions()
    build_args = dict(a.split("=", 1) for w, a in instructions if w == "ARG" and "=" in a)
    images = [
        re.sub(r"\$\{(\w+)\}", lambda m: build_args[m[1]], args.split()[0])
        for word, args in instructions
        if word == "FROM"
    ]
    assert images and all(image == "python:3.11-slim" for image in images)
    assert exec_form(the("ENTRYPOINT")) == ["lapor-gateway"]
    assert exec_form(the("CMD")) == ["serve"]
    user = the("USER").split(":")[0]
    assert user not in ("root", "0")
    assert the("EXPOSE").split() == ["8080"]
    assert dockerfile_env()["LAPOR_HTTP__HOST"] == "0.0.0.0"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "lapor-gateway" in scripts


def test_dockerfile_installs_the_project_without_test_extras() -> None:
    runs = [args for word, args in dockerfile_instructions() if word == "RUN"]
    installs = [args for args in runs if re.search(r"\bpip install\b", args)]
    assert installs and all(re.search(r"pip install (\S+ )*\.$", args) for args in installs)
    assert not any("[test]" in args or "pytest" in args for args in runs)


def test_dockerfile_env_and_workdir_give_valid_settings() -> None:
    env = dockerfile_env()
    workdir = PurePosixPath(the("WORKDIR"))
    copied = [args.split() for word, args in final_stage() if word == "COPY"]
    assert ["config/", "./config/"] in copied
    # The settings file the image reads is the one copied into the working directory.
    assert PurePosixPath(env["LAPOR_CONFIG"]) == workdir / "config" / "gateway.toml"
    lapor_env = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    assert not SECRET_ENV & set(lapor_env), "no secret is baked into the image"
    settings = load_settings(CONFIG, environ=lapor_env)
    # The default file store (relative to the working directory) is on the image's volume.
    store = workdir / PurePosixPath(settings.storage.file_store)
    volumes = [PurePosixPath(v) for v in exec_form(the("VOLUME"))]
    assert any(v in store.parents for v in volumes)


def test_dockerfile_copies_every_package_and_dockerignore_lets_them_in() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    includes = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*").rstrip(".") for pattern in includes}
    copied = {args.split()[0] for word, args in dockerfile_instructions() if word == "COPY"}
    ignore = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*", ".dockerignore is an allow-list"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for package in packages:
        assert package in copied, f"the Dockerfile does not COPY {package}"
        assert package in allowed, f".dockerignore leaves out {package}"
    assert {"pyproject.toml", "config/gateway.toml"} <= allowed
    for secret in ("**/.env", "**/*.env"):
        assert secret in ignore
    assert not any(a.startswith((".venv", "var", "tests", ".git")) for a in allowed)
