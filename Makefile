# opus_min — `make run` serves the bundled services; `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
APT_PACKAGES := stilts fitsverify graphviz chromium

.PHONY: help run test lint bench check screenshots system-deps slurm slurm-stop clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "opus_min needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

system-deps:  ## install the Debian packages the tests use (STILTS, fitsverify, graphviz, chromium) when root
	@if command -v stilts >/dev/null 2>&1 && command -v fitsverify >/dev/null 2>&1 && command -v dot >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	else echo "note: install '$(APT_PACKAGES)' (Debian) to run the STILTS and FITS checks"; fi

slurm:  ## start the single-node Slurm cluster of the Slurm tests (installs it; root on Debian)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  scripts/slurm-dev start || echo "note: scripts/slurm-dev start failed; the Slurm tests will say why"; \
	else echo "note: run 'sudo scripts/slurm-dev start' (Debian) to run the Slurm tests"; fi

slurm-stop:  ## cancel the opus_min Slurm jobs and stop the daemons scripts/slurm-dev started
	scripts/slurm-dev stop

run: $(STAMP)  ## serve the bundled services on http://127.0.0.1:8000 (SQLite, local executor)
	-$(BIN)/opus-min check services
	$(BIN)/opus-min serve

test: $(STAMP) system-deps slurm  ## set up and run the test suite
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check opus_min tests bench
	$(BIN)/ruff format --check opus_min tests bench

screenshots: $(STAMP) system-deps  ## screenshots of the main pages (laptop and phone) into var/screenshots
	OPUS_MIN_SCREENSHOTS=$(CURDIR)/var/screenshots $(BIN)/python -m pytest -q tests/pages/test_browser.py -k "screenshots or png_results or validation"
	@echo "screenshots in var/screenshots/"

check: $(STAMP)  ## check the service definitions in services/
	$(BIN)/opus-min check services

bench: $(STAMP)  ## benchmark suite P1-P7 against a live server (bench/README.md)
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq --no-install-recommends wrk; } || echo "note: install wrk (Debian) for load figures not capped by Python"
	$(BIN)/python bench/run.py

clean:  ## remove the virtualenv and local state
	rm -rf $(VENV) var
