# Front end for the overlay tooling (python -m mpoverlay) and the tests.
#
#   make                 build the patched unix firmware (BTstack and NimBLE over
#                        H4) and run a short pairing demo over the virtual radio
#   make test            host tests; plus the multi_bluetooth integration suite
#                        when an upstream tree is available (MICROPY_DIR=...)
#   make rp2 BOARD=RPI_PICO_W|RPI_PICO2_W
#                        rp2 firmware into build/rp2-<BOARD>/firmware.{uf2,elf}
#   make matrix          bonding matrix: stack pairs x legacy/SC x restart side,
#                        public and random static addresses
#   make aioble          micropython-lib's aioble multitests (and ours) per stack pair
#   make series BASE=DIR export patches/series as commits on an upstream tree
#                        (v1.28.0 or master), building and checking each one
#   make size            benchmark: rp2 firmware size, upstream vs overlay vs store
#   make bench           benchmark: bond store write cost, active(1) cost with 0
#                        and 16 bonds, reconnect time after a restart vs warm
#   make wear            benchmark: flash erases/programs per bond event on a
#                        simulated NOR flash (littlefs2 and FAT, 4 KB blocks)
#
# rp2 offline inputs: MBEDTLS_DIR=<mbedtls 3.6.x source> when the tree's
# lib/mbedtls is empty; PICOTOOL_FETCH_FROM_GIT_PATH=<dir with an installed
# picotool> (else pico-sdk downloads picotool into build/picotool).
#
# MICROPY_DIR=<MicroPython v1.28.0 checkout with submodules> builds on a local
# tree (read only); without it the pinned commits are cloned into build/upstream.

PYTHON ?= python3
VENV := build/venv
PY := $(VENV)/bin/python
STACKS ?= btstack/btstack
TESTS ?=
BOARD ?= RPI_PICO_W
BASE ?= $(MICROPY_DIR)
SERIES_NAME ?=

export MICROPY_DIR MBEDTLS_DIR PICOTOOL_FETCH_FROM_GIT_PATH

.PHONY: all venv demo unix multitest matrix aioble series rp2 size nimble-size bench wear test test-host lint format clean distclean

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

matrix: venv
	$(PY) -m mpoverlay matrix

aioble: venv
	$(PY) -m mpoverlay aioble

series: venv
	$(PY) -m mpoverlay series --base $(BASE) $(if $(SERIES_NAME),--name $(SERIES_NAME)) --suite

# The firmware targets need no venv (nothing from PyPI): the system Python.
rp2:
	$(PYTHON) -m mpoverlay rp2 --board $(BOARD)

size:
	$(PYTHON) -m mpoverlay size

nimble-size:
	$(PYTHON) -m mpoverlay nimble-size

bench: venv
	$(PY) -m mpoverlay.bench

wear: venv
	$(PY) -m mpoverlay.wear

test: venv
	$(PY) -m pytest

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: venv
	$(PY) -m ruff format .

clean:
	rm -rf build/tree build/tree-upstream build/unix-* build/rp2-* build/logs

distclean:
	rm -rf build
