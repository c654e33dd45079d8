# Valuit Desk: `make run` opens the desk on demo mail, `make test` runs the whole suite.
# Both create .venv and install what they need on a fresh machine.

VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
CONFIG  := config.example.toml
PYTEST_ARGS ?=

.PHONY: help run test bench mutation lint snapshot-update system-deps

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

system-deps:  ## install Dovecot, isync, tmux and Chromium for the tests where we can (root on Debian)
	@if ! command -v dovecot >/dev/null || ! command -v mbsync >/dev/null || ! command -v tmux >/dev/null || ! command -v openssl >/dev/null || ! test -x /usr/bin/chromium; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl \
	      dovecot-imapd isync tmux chromium >/dev/null) || echo "note: could not install dovecot-imapd/isync/tmux/chromium"; \
	  else echo "note: dovecot-imapd, isync, tmux or chromium missing; the tests that need them will skip"; fi; \
	fi

run: $(STAMP)  ## open the desk on demo mail (seeds var/spool once, runs desk-ingest meanwhile)
	@mkdir -p var
	@$(PY) -m ingest.demo var/spool var/desk.db
	@$(VENV)/bin/desk-ingest --config $(CONFIG) --once 2>>var/desk-ingest.log || true
	@$(PY) -m ingest.demo --work var/desk.db
	@$(VENV)/bin/desk-ingest --config $(CONFIG) 2>>var/desk-ingest.log & pid=$$!; \
	  trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null' EXIT INT TERM; \
	  $(VENV)/bin/desk --config $(CONFIG)

test: $(STAMP) system-deps  ## run the whole test suite
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP) system-deps  ## run the benchmarks (figures as ratios against a same-run baseline)
	$(PY) -m bench

# MUTANTS narrows it to the mutants whose names match (module.x_function__mutmut_N, fnmatch
# patterns): make mutation MUTANTS='db.mailin.acks.*'. Only those run, and only they are
# listed; the counter still shows the total. MUTATION_JOBS: test processes at once.
MUTANTS ?=
MUTATION_JOBS ?= 1
mutation: $(STAMP)  ## mutation testing of the modules holding the safety rules (long; not in make test)
	env -u PYTHONPATH $(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) $(foreach m,$(MUTANTS),'$(m)')
	$(if $(MUTANTS),,$(VENV)/bin/mutmut results)

lint: $(STAMP)  ## ruff, and the import contracts between db/, ingest/ and tui/
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

snapshot-update: $(STAMP)  ## accept the current TUI snapshots
	$(PY) -m pytest -q tests/test_tui_snapshots.py --snapshot-update
