"""What the production image holds, rebuilt here without Docker.

The image is assembled the way ``docker build`` does it, step by step:

1. the build context: the repository filtered by ``.dockerignore`` (Docker's rules: last
   matching pattern wins, ``!`` takes a path back, a pattern matching a folder takes what is
   inside it, ``**`` spans folders);
2. the build stage: its ``COPY`` instructions put context files under its ``WORKDIR``, then
   ``pip install .`` builds the package; here setuptools' ``build_py`` (what a wheel holds: the
   packages and their package data) runs on that copy, so only what reached the build is in it;
3. the final stage: its ``COPY`` instructions from the context (the settings file).

Then the built package is imported on its own (not the source tree) and asked for every file
the code opens at run time: the normalizer's data files through :mod:`importlib.resources`,
Alembic's migrations beside ``gateway/storage/migrate.py``. A file the code reads that the
package data leaves out works from a checkout and fails only in the image.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
from alembic.script import ScriptDirectory

from gateway.settings import load_settings
from gateway.storage import migrate
from tests.unit.test_compose import DOCKERIGNORE, dockerfile_env, dockerfile_instructions

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "channels", "normalizer")

# Every place the package code finds files relative to itself, and what it reads there. A new
# one must be added here, and what it reads to the checks below (and to the package data).
FILE_ACCESS = {
    "gateway/storage/migrate.py": "Alembic's migrations (gateway/migrations)",
    "normalizer/_resources.py": "normalizer/data/* through importlib.resources",
    "channels/web/openapi.py": "writes channels/web/openapi.json when run as a script; the"
    " served document is rendered, not read",
}
# Files of the package folders that are not needed at run time (not in the package data).
NOT_AT_RUN_TIME = {
    "channels/web/README.md",
    "channels/sms/README.md",
    "channels/letter/README.md",
    "channels/web/openapi.json",
}
_ACCESS = re.compile(r"__file__|resources\.files\(")
_DATA_NAME = re.compile(r"read_data_text\(\s*\"([^\"]+)\"\s*\)")

# --- .dockerignore ------------------------------------------------------------------------------


def _pattern(text: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go's filepath.Match with ``**``) as a regular expression."""
    text = os.path.normpath(text).lstrip("/")
    out, i = "", 0
    while i < len(text):
        if text.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif text.startswith("**", i):
            out, i = out + ".*", i + 2
        elif text[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif text[i] == "?":
            out, i = out + "[^/]", i + 1
        elif text[i] == "[":
            end = text.index("]", i)
            out, i = out + text[i : end + 1], end + 1
        else:
            out, i = out + re.escape(text[i]), i + 1
    return re.compile(out)


def _rules() -> list[tuple[bool, str, re.Pattern[str]]]:
    rules = []
    for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        text = line[1:].strip() if negated else line
        rules.append((negated, os.path.normpath(text).lstrip("/"), _pattern(text)))
    return rules


def _ignored(path: str, rules: list[tuple[bool, str, re.Pattern[str]]]) -> bool:
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for negated, _, regex in rules:
        if any(regex.fullmatch(c) for c in candidates):
            ignored = not negated
    return ignored


def build_context() -> list[str]:
    """The files ``docker build .`` sends, as paths relative to the repository."""
    rules = _rules()
    kept: list[str] = []
    for folder, dirs, files in os.walk(ROOT):
        rel = Path(folder).relative_to(ROOT).as_posix()
        prefix = "" if rel == "." else rel + "/"
        # A folder that is ignored and that no "!" pattern reaches into is not walked.
        dirs[:] = [
            d
            for d in dirs
            if not _ignored(prefix + d, rules)
            or any(neg and text.startswith(prefix + d + "/") for neg, text, _ in rules)
        ]
        kept += [prefix + f for f in files if not _ignored(prefix + f, rules)]
    return sorted(kept)


def test_the_dockerignore_rules_as_read_here() -> None:
    """The matcher above on the cases the allow-list relies on."""
    rules = _rules()
    assert not _ignored("gateway/intake.py", rules)
    assert not _ignored("normalizer/data/regions.csv.gz", rules)
    assert not _ignored("config/gateway.toml", rules)
    for path in (
        "gateway/__pycache__/intake.cpython-311.pyc",
        "normalizer/data/x.pyc",
        "config/compose.env",
        "config/compose.env.example",
        ".env",
        "gateway/.env",
        ".venv/bin/python",
        "tests/conftest.py",
        "var/lapor.db",
        "lapor_gateway.egg-info/PKG-INFO",
    ):
        assert _ignored(path, rules), path


# --- docker build, without Docker -----------------------------------------------------------------


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for word, args in dockerfile_instructions():
        if word == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word, args))
    return stages


def _copy_from_context(stage: list[tuple[str, str]], context: Path, into: Path) -> None:
    """Run a stage's ``COPY`` instructions that read the build context (not ``--from``)."""
    workdir = PurePosixPath("/")
    for word, args in stage:
        if word == "WORKDIR":
            workdir = workdir / args
        if word != "COPY" or "--from=" in args:
            continue
        *sources, dest = [a for a in args.split() if not a.startswith("--")]
        target = into / (workdir / dest).relative_to("/")
        for source in sources:
            for found in sorted(context.glob(source)):
                if found.is_dir():  # Docker copies a folder's contents
                    shutil.copytree(found, target, dirs_exist_ok=True)
                else:
                    dest_file = target / found.name if dest.endswith("/") or len(sources) > 1 else target
                    dest_file.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(found, dest_file)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build context, the build stage's package build and the final stage's files."""
    root = tmp_path_factory.mktemp("image")
    context = root / "context"
    for rel in build_context():
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, context / rel)
    build, *_, final = _stages()
    assert build[0][1].split()[-1] == "build" and final is not build
    stage = root / "build-stage"
    _copy_from_context(build, context, stage)
    workdir = next(args for word, args in build if word == "WORKDIR")
    source = stage / PurePosixPath(workdir).relative_to("/")
    assert any("pip install ." in args for word, args in build if word == "RUN")
    done = subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py",
         "--build-lib", str(root / "lib")],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    _copy_from_context(final, context, root / "final")
    return root


def _package_files() -> set[str]:
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                found.add(path.relative_to(ROOT).as_posix())
    return found


def test_every_file_of_the_packages_reaches_the_built_package(image: Path) -> None:
    """A module in a folder without ``__init__.py``, or a data file outside the package data,
    is imported from a checkout and missing from the image."""
    lib = image / "lib"
    built = {p.relative_to(lib).as_posix() for p in lib.rglob("*") if p.is_file()}
    missing = _package_files() - built
    assert missing == NOT_AT_RUN_TIME, f"not in the built package: {sorted(missing - NOT_AT_RUN_TIME)}"


def test_every_file_access_relative_to_the_code_is_known() -> None:
    found = {
        path
        for path in _package_files()
        if path.endswith(".py") and _ACCESS.search((ROOT / path).read_text(encoding="utf-8"))
    }
    assert found == set(FILE_ACCESS), "a new file read relative to the code: add it above"


_SMOKE = r"""
import json, sys
lib, names = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, lib)
import channels, gateway, normalizer
from alembic.script import ScriptDirectory
from gateway.storage import migrate
from normalizer._resources import read_data_text
for module in (channels, gateway, normalizer, migrate):
    assert module.__file__.startswith(lib), module.__file__
script = ScriptDirectory.from_config(migrate.alembic_config())
print(json.dumps({
    "data": {name: len(read_data_text(name)) for name in names},
    "head": script.get_current_head(),
    "revisions": sorted(r.revision for r in script.walk_revisions()),
}))
"""


def test_the_built_package_finds_every_file_it_reads(image: Path) -> None:
    names = sorted(
        {
            name
            for path in (ROOT / "normalizer").glob("*.py")
            for name in _DATA_NAME.findall(path.read_text(encoding="utf-8"))
        }
    )
    assert "regions.csv.gz" in names, "the NIK region list"
    done = subprocess.run(
        [sys.executable, "-c", _SMOKE, str(image / "lib"), json.dumps(names)],
        cwd=image,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert set(found["data"]) == set(names) and all(found["data"].values())
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert found["head"] == migrate.head_revision()
    assert found["revisions"] == sorted(r.revision for r in script.walk_revisions())


def test_the_image_reads_the_settings_file_it_was_given(image: Path) -> None:
    env = dockerfile_env()
    config = PurePosixPath(env["LAPOR_CONFIG"]).relative_to("/")
    path = image / "final" / config
    assert path.is_file(), "LAPOR_CONFIG names a file the final stage copied"
    assert path.read_bytes() == (ROOT / "config" / "gateway.toml").read_bytes()
    lapor = {k: v for k, v in env.items() if k.startswith("LAPOR_") and k != "LAPOR_CONFIG"}
    load_settings(path, environ=lapor)
    # Nothing else of config/ is in the image: no example secrets, no bridge configurations.
    final = image / "final"
    copied = {p.relative_to(final).as_posix() for p in final.rglob("*") if p.is_file()}
    assert copied == {config.as_posix()}
