# The two commands of the README:
#   make serve   set up (virtualenv, dependencies, database) and run the gateway on its embedded
#                default: SQLite and files under ./var/, RabbitMQ on 127.0.0.1:5672.
#   make test    set up and run the whole test suite (lint, types, unit, integration).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: serve test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

serve: $(VENV)/.installed
	$(BIN)/lapor-gateway migrate
	$(BIN)/lapor-gateway serve

lint: $(VENV)/.installed
	$(BIN)/ruff check gateway channels normalizer tests bench
	$(BIN)/mypy

test: $(VENV)/.installed lint
	scripts/install-system-packages
	scripts/ensure-services
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(VENV)/.installed
	scripts/ensure-services
	$(BIN)/python bench/intake.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
