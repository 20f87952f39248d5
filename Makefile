# deal_stages developer entry points. The work is done by tools/devenv.py.
#   make run   [DB=deal_stages_demo] [PORT=8069]   demo database, served
#   make test  [T=path::Class::test] [TEST_DB=deal_stages_test]
#   make lint                                      ruff + pylint-odoo
#   make format                                    ruff format + safe fixes
#   make bench | load | lifecycle                  performance, workers, upgrade
#   make clean                                     remove .run/ and caches
# VENV=/shared/venv lets several worktrees share one virtualenv; give each
# its own TEST_DB (and DB/PORT) when they run at the same time.

ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
PYTHON ?= python3
VENV ?= $(ROOT)/.venv
DB ?= deal_stages_demo
PORT ?= 8069
TEST_DB ?= deal_stages_test
T ?=
export VENV

DEVENV = $(PYTHON) $(ROOT)/tools/devenv.py

.PHONY: help run test lint format bench load lifecycle clean

help:
	@sed -n '2,10p' $(ROOT)/Makefile | sed 's/^# \{0,1\}//'

run:
	@$(DEVENV) run --db '$(DB)' --port '$(PORT)'

test:
	@$(DEVENV) test --test-db '$(TEST_DB)' $(T)

lint:
	@$(DEVENV) lint

format:
	@$(DEVENV) format

# issue 10: each makes its own fresh databases (BENCH_DB, LOAD_DB, LIFECYCLE_DB)
bench:
	@$(DEVENV) prepare && $(VENV)/bin/python $(ROOT)/tools/bench.py

load:
	@$(DEVENV) prepare && $(VENV)/bin/python $(ROOT)/tools/load.py

lifecycle:
	@$(DEVENV) prepare && $(VENV)/bin/python $(ROOT)/tools/lifecycle.py

clean:
	@$(DEVENV) clean
