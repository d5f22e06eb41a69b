# Front end for the overlay tooling (python -m mpoverlay) and the tests.
#
#   make                 build the patched unix firmware (BTstack and NimBLE over
#                        H4) and run a short pairing demo over the virtual radio
#   make test            host tests; plus the multi_bluetooth integration suite
#                        when an upstream tree is available (MICROPY_DIR=...)
#
# MICROPY_DIR=<MicroPython v1.28.0 checkout with submodules> builds on a local
# tree (read only); without it the pinned commits are cloned into build/upstream.

PYTHON ?= python3
VENV := build/venv
PY := $(VENV)/bin/python
STACKS ?= btstack/btstack
TESTS ?=

export MICROPY_DIR

.PHONY: all demo unix multitest test test-host lint format clean distclean

all: demo

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) -m mpoverlay demo

unix: venv
	$(PY) -m mpoverlay build

multitest: venv
	$(PY) -m mpoverlay multitest --stacks $(STACKS) $(TESTS)

test: venv
	$(PY) -m pytest

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: venv
	$(PY) -m ruff format .

clean:
	rm -rf build/tree build/unix-* build/logs

distclean:
	rm -rf build
