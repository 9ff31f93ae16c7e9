# Casetrail: local developer and CI entry points.
#   make install   Python env (uv), Kafka jars (Maven), PostgreSQL (apt, when missing)
#   make run       install, then start PostgreSQL + Kafka + the five services (Ctrl-C stops)
#                  (a subset: make run SERVICES=intake,triage)
#   make stop      stop a stack left running (state in .run/)
#   make lint      ruff check + ruff format --check
#   make test      install, lint, pytest (tests start their own throw-away stack)
#   make chaos     install, then a large chaos run on a throw-away stack (CHAOS_CASES=3000 ...)
#   make bench     install, then benchmarks on a throw-away stack (figures, no pass/fail)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
PYTHON_VERSION := python3.11
# uv from PATH; right after `pip install uv` a pyenv shim may not exist yet: use the module
UV = $(shell command -v uv >/dev/null 2>&1 && echo uv || echo python3 -m uv)
INFRA := .venv/bin/python deploy/infra.py
# Workspace members are editable installs; uv caches their (hatchling) editable wheels by
# pyproject.toml, so a member synced before its src/ existed stays unimportable. Rebuilding
# the members' editable wheels on every sync is cheap and avoids that trap.
WORKSPACE_PACKAGES := $(shell sed -n 's/^name = "\(.*\)"/\1/p' libs/*/pyproject.toml services/*/pyproject.toml)
UV_SYNC_FLAGS := --all-packages --python $(PYTHON_VERSION)$(if $(wildcard uv.lock), --frozen,) \
	$(foreach p,$(WORKSPACE_PACKAGES),--reinstall-package $(p))

.PHONY: help install uv sync infra-install run stop status lint test chaos bench

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		pip install --quiet uv || python3 -m pip install --quiet uv

sync: uv
	$(UV) sync $(UV_SYNC_FLAGS)

infra-install: sync
	$(INFRA) install

install: sync infra-install

run: install
	$(INFRA) up$(if $(SERVICES), --services $(SERVICES),)

stop:
	@if [ -x .venv/bin/python ]; then $(INFRA) down; else echo "no .venv: nothing to stop"; fi

status:
	$(INFRA) status

lint: sync
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .

test: install lint
	$(UV) run --no-sync pytest -q

chaos: install
	.venv/bin/python tests/chaos.py

bench: install
	.venv/bin/python bench/intake.py
	.venv/bin/python bench/replay.py
