# opus_min — `make run` serves the bundled services; `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
APT_PACKAGES := stilts

.PHONY: help run test lint bench check system-deps clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "opus_min needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

system-deps:  ## install the Debian packages the tests use (STILTS), when root and missing
	@if command -v stilts >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	else echo "note: install '$(APT_PACKAGES)' (Debian) to run the STILTS conformance tests"; fi

run: $(STAMP)  ## serve the bundled services on http://127.0.0.1:8000 (SQLite, local executor)
	-$(BIN)/opus-min check services
	$(BIN)/opus-min serve

test: $(STAMP) system-deps  ## set up and run the test suite
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check opus_min tests bench
	$(BIN)/ruff format --check opus_min tests bench

check: $(STAMP)  ## check the service definitions in services/
	$(BIN)/opus-min check services

bench: $(STAMP)  ## quick throughput figures against a live server
	$(BIN)/python bench/quick.py

clean:  ## remove the virtualenv and local state
	rm -rf $(VENV) var
