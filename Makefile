# authnet: the two commands a fresh machine needs are `make demo` and `make test`.
# Both create the virtual environment from uv.lock (and install the Debian
# packages the tests need) when missing.

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: demo test check lint typecheck unit bench proto lock system-deps serve clean help

help:
	@echo "make demo      run a complete phone-QR login in-process (SQLite) and narrate it"
	@echo "make test      lint, type-check and run the whole test suite"
	@echo "make bench     run the benchmarks (JSON on stdout)"
	@echo "make serve     run a network node with zero configuration"
	@echo "make proto     regenerate the gRPC stubs after editing proto/"
	@echo "make lock      re-resolve dependencies into uv.lock"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): uv.lock pyproject.toml | $(UV)
	@scripts/install-system-deps.sh build
	$(UV) sync --frozen --all-extras --quiet
	@touch $@

system-deps:
	@scripts/install-system-deps.sh test

demo: $(STAMP)
	$(VENV)/bin/authnet demo

serve: $(STAMP)
	$(VENV)/bin/authnet serve

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck

test: $(STAMP) system-deps check
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	$(VENV)/bin/python bench/login.py
	$(VENV)/bin/python bench/login.py --rate 150
	$(VENV)/bin/python bench/floors.py
	$(VENV)/bin/python bench/tokens.py
	$(VENV)/bin/python bench/vault.py
	$(VENV)/bin/python bench/waiters.py
	$(VENV)/bin/python bench/hardener.py --unlock
	$(VENV)/bin/python bench/sealing.py
	$(VENV)/bin/python bench/proxy.py --login

proto: $(STAMP)
	$(VENV)/bin/python scripts/gen_proto.py

lock: $(UV)
	$(UV) lock

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
