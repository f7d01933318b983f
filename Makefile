# The two commands a newcomer types: `make run` and `make test`. Both create .venv when it is
# missing and install the project into it, so a fresh machine needs only Python and its venv module
# (Debian/Ubuntu: apt-get install -y python3-venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

.PHONY: run test test-fast bench bench-eta bench-scale bench-notify clean install chromium screenshots

# The browser tests drive Debian's chromium (never a browser Playwright downloads).
export MEDPHARMA_CHROMIUM ?= /usr/bin/chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_TEST): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP_RUN)

install: $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/python -m server

# Installs chromium when it is missing and we are root with apt-get (CI, a fresh machine);
# otherwise says how, and the browser tests fail with the same advice.
chromium:
	@if [ ! -x "$(MEDPHARMA_CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's chromium for the browser tests"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else \
	    echo "The browser tests need chromium at $(MEDPHARMA_CHROMIUM): run 'apt-get install chromium' as root, or set MEDPHARMA_CHROMIUM to a chromium binary." >&2; \
	  fi; \
	fi

test: $(STAMP_TEST) chromium
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The quick loop: unit and in-process integration tests, no chromium, no Redis. The markers it leaves
# out (setup.cfg) each select their part alone: `pytest -m browser`, `-m contract`, `-m fuzz`,
# `-m redis`, `-m slow`; `make test` runs them all.
test-fast: $(STAMP_TEST)
	$(BIN)/python -m pytest -q -m "not browser and not contract and not fuzz and not redis and not slow" $(PYTEST_ARGS)

# Refreshes the README's pictures of every page (phone and desktop width).
screenshots: $(STAMP_TEST) chromium
	MEDPHARMA_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/test_web_pages.py \
	  tests/test_web_languages.py::test_every_page_passes_axe_in_french

STAMP_BENCH := $(VENV)/.installed-bench

$(STAMP_BENCH): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@ $(STAMP_TEST) $(STAMP_RUN)

bench: $(STAMP_BENCH)
	$(BIN)/python -m bench
	$(BIN)/python -m bench.limits
	$(BIN)/python -m bench.slots

bench-eta: $(STAMP_BENCH)
	$(BIN)/python -m bench.eta

# Notifications at scale (issue 23): 1,000 subscribed patients, a push service answering in 200 ms.
bench-notify: $(STAMP_BENCH)
	$(BIN)/python -m bench.notify

# The scale figures: one run fills bench/README.md's table, one command after the other (each takes
# flags for a smaller check, see --help); the uvloop pair runs back to back so the two compare.
bench-scale: $(STAMP_BENCH)
	$(BIN)/python -m bench.fanout
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.memory --case hotline --legacy-write
	$(BIN)/python -m bench.socket_memory
	$(BIN)/python -m bench.encoding
	$(BIN)/python -m bench.growth --plot docs/growth.png
	$(BIN)/python -m bench.nodes
	$(BIN)/python -m bench.fanout --uvloop --sockets 1000
	$(BIN)/python -m bench.fanout --sockets 1000

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
