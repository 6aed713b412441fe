# The two commands of the README:
#   make serve   set up (virtualenv, dependencies, database) and run the gateway on its embedded
#                default: SQLite and files under ./var/, RabbitMQ on 127.0.0.1:5672.
#   make test    set up and run the whole test suite (lint, types, unit, integration).
#                The system packages are installed first, so a test that would need a missing
#                one fails (REQUIRE_SYSTEM_PACKAGES=1) instead of being skipped.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: serve test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The gateway and what it runs on; the test tools (pytest, Playwright, mypy...) only for tests.
# setuptools as pyproject.toml's build system asks (its SPDX licence form), also for the tests
# that build the package the way the image does.
$(VENV)/.installed-serve: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install --quiet "setuptools>=77" -e .
	touch $@

$(VENV)/.installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install --quiet "setuptools>=77" -e ".[test]"
	touch $@ $(VENV)/.installed-serve

serve: $(VENV)/.installed-serve
	$(BIN)/lapor-gateway migrate
	$(BIN)/lapor-gateway serve

lint: $(VENV)/.installed
	$(BIN)/ruff check gateway channels normalizer tests bench
	$(BIN)/mypy

test: $(VENV)/.installed lint
	scripts/install-system-packages
	scripts/ensure-services
	REQUIRE_SYSTEM_PACKAGES=1 $(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(VENV)/.installed
	scripts/ensure-services
	$(BIN)/python bench/intake.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
