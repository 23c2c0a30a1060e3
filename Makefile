# Kave: `make run` serves the embedded default, `make test` runs the whole suite.
# Both work on a fresh machine with only Python 3.11+ and make: they create .venv and install
# the hashed, pinned requirements first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Peers whose X-Forwarded-For uvicorn believes: addresses or networks, comma-separated, `*` for
# all. None unless set (uvicorn's own default would trust 127.0.0.1, so anything on this host
# could pick the client address the token rate limit counts). Exported: Kave checks it too.
export FORWARDED_ALLOW_IPS ?=
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes
# Kave itself, editable, so `.venv/bin/kave` runs this checkout's code. A separate pip call:
# --require-hashes cannot cover a local directory. No build isolation and no dependencies: the
# build backend (setuptools) and everything else come from the hashed lock just installed.
INSTALL_SELF := $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
	--no-build-isolation --editable .
LOCK := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links

.PHONY: run test lint lock migrate bench bench-unsigned soak docker-test clean help

help:
	@echo "make run      serve Kave on http://$(HOST):$(PORT) (SQLite + ./data/attachments)"
	@echo "make test     run the whole test suite (TEST_DATABASE_URL selects PostgreSQL)"
	@echo "make lint     ruff check, ruff format --check, mypy"
	@echo "make migrate  apply database migrations (DATABASE_URL)"
	@echo "make lock     recompile requirements/*.txt from requirements/*.in"
	@echo "make bench    run the benchmark, notifications included (BENCH_DATABASE_URL selects PostgreSQL)"
	@echo "make bench-unsigned  memory and /health/live while unsigned large bodies come in"

# The venv counts as made only while its pip runs: `python3 -m venv` without Debian's
# python3-venv leaves a .venv with a python but no pip, which must not pass for built. When the
# check fails, the venv target is phony, so it is rebuilt from scratch and the installs follow.
VENV_STAMP := $(VENV)/pyvenv.cfg
ifneq ($(shell $(BIN)/python -m pip --version >/dev/null 2>&1 && echo ok),ok)
.PHONY: $(VENV_STAMP)
endif

$(VENV_STAMP):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Kave needs Python 3.11 or newer as $(PYTHON)"; exit 1; }
	@if [ -e $(VENV) ]; then echo "$(VENV) has no working pip: making it again"; rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip --version >/dev/null || \
		{ rm -rf $(VENV); echo "On Debian/Ubuntu, install the venv module first: sudo apt install python3-venv"; exit 1; }

$(VENV)/.runtime: requirements/integrations.txt pyproject.toml $(VENV_STAMP)
	$(PIP_INSTALL) -r requirements/integrations.txt
	$(INSTALL_SELF)
	@touch $@

$(VENV)/.dev: requirements/dev.txt pyproject.toml $(VENV_STAMP)
	$(PIP_INSTALL) -r requirements/dev.txt
	$(INSTALL_SELF)
	@touch $@ $(VENV)/.runtime

migrate: $(VENV)/.runtime
	$(BIN)/alembic upgrade head

run: $(VENV)/.runtime migrate
	@mkdir -p data/attachments
	@HOST=$(HOST) PORT=$(PORT) $(BIN)/kave first-run-hint || true
	@# HOST and PORT also reach Kave, which derives MAILCHIMP_WEBHOOK_URL from them when unset.
	HOST=$(HOST) PORT=$(PORT) $(BIN)/uvicorn app.main:app --host $(HOST) --port $(PORT) --no-server-header \
		--forwarded-allow-ips='$(FORWARDED_ALLOW_IPS)'

test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

lock: $(VENV)/.dev
	$(LOCK) -o requirements/base.txt requirements/base.in
	$(LOCK) -o requirements/integrations.txt requirements/integrations.in
	$(LOCK) -o requirements/dev.txt requirements/dev.in

bench: $(VENV)/.dev
	$(BIN)/python -m bench $(BENCH_ARGS)
	$(BIN)/python -m bench.notifications

bench-unsigned: $(VENV)/.dev
	$(BIN)/python -m bench.unsigned

soak: $(VENV)/.dev
	$(BIN)/python -m bench.soak

docker-test: $(VENV)/.dev
	KAVE_TEST_DOCKER=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
