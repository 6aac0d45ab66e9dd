# `make demo` and `make test` work on a fresh machine: they create .venv and install.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: install browser demo test test-all lint typecheck bench check clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,hf,peers,web]'
	touch $(STAMP)

install: $(STAMP)

# The report's browser tests drive Debian's Chromium through Playwright (no browser download).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

demo: $(STAMP)
	$(VENV)/bin/selfimprove tour --quick

test: $(STAMP) browser
	$(PY) -m pytest -q -m "not slow"

test-all: $(STAMP) browser
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/bench_collapse.py
	$(PY) benchmarks/bench_mcts.py
	$(PY) benchmarks/bench_tiny_gpt.py
	$(PY) benchmarks/bench_collapse_text.py
	$(PY) benchmarks/bench_distill.py
	$(PY) benchmarks/bench_sandbox.py
	$(PY) benchmarks/bench_cli.py

check: lint typecheck test

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
