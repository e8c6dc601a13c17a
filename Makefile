# nefos: the two commands of the README, and what they need.
#   make up     create .venv on first use, install nefos, run the cloud on embedded defaults
#   make test   install what the tests need and run the whole suite (what CI runs)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=
PYTEST_ARGS ?=
# Test workers (pytest-xdist): CI's machine has 2 cores. Tests that share the Ganeti
# cluster, Ceph, Chromium or a module's `nefos up` stay on one worker (tests/conftest.py).
PYTEST_WORKERS ?= 2

# In CI the local PostgreSQL and RabbitMQ are part of the suite, not optional extras.
ifeq ($(CI),true)
export NEFOS_TEST_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
export NEFOS_TEST_AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/
endif

.PHONY: up test lint format bench bench-swift bench-volumed bench-spawn bench-ip clean

up: $(VENV)/.installed
	$(BIN)/nefos up $(ARGS)

# As root, the suite also runs a throwaway Ceph for the rados store, a single-node
# Ganeti for the compute backend, a private RabbitMQ node that the fault tests
# restart and Debian's Chromium for the web UI's browser tests (each a no-op once
# installed).
test: $(VENV)/.installed-test
	@if [ "$$(id -u)" = 0 ]; then \
		scripts/ceph-dev.sh install && scripts/ceph-dev.sh link-python $(VENV) && \
		scripts/ganeti-dev.sh install && scripts/chromium.sh install && \
		{ [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || apt-get install -y -q rabbitmq-server; }; \
	fi
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: $(VENV)/.installed-test
	$(BIN)/python bench/token_validation.py
	$(BIN)/python bench/compute_list.py

# nefos volumed against a raw file through qemu-img/qemu-io (issue 22); needs qemu-utils
bench-volumed: $(VENV)/.installed-test
	@command -v qemu-img >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q qemu-utils; }
	$(BIN)/python bench/volumed.py $(ARGS)

# create -> ACTIVE from a 10 GiB image against a 10 MiB one on the dev Ganeti (issue 22);
# needs scripts/ganeti-dev.sh start, as root
bench-spawn: $(VENV)/.installed-test
	$(BIN)/python bench/volume_spawn.py $(ARGS)

# IP allocations per second under 50 concurrent clients (issue 20): PostgreSQL on
# 127.0.0.1:5432 (user postgres, a throwaway database), then SQLite
bench-ip: $(VENV)/.installed-test
	$(BIN)/python bench/ip_allocations.py $(ARGS)

# nefos against OpenStack Swift (issue 4); Swift itself goes into bench/.swift-venv
bench-swift: $(VENV)/.installed-test
	@command -v memcached >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q memcached; }
	$(BIN)/python bench/swift_compare.py $(ARGS)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) build src/*.egg-info
