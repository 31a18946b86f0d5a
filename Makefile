# Two commands from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint lock install bench bench-speed screenshots clean

# The exact versions in requirements.lock, then the project itself without resolving again.
# pip check fails when pyproject.toml asks for something the lock lacks: then run `make lock`.
$(BIN)/pgbackup-tui: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	@touch $@

# Bytecode for the package, written here because nothing else may: with PYTHONDONTWRITEBYTECODE set
# (as on our machines) an editable install would compile every module on every start (0.12 s of
# each command's). A pip install compiles it the same way; a stale file is ignored, never used.
install: $(BIN)/pgbackup-tui
	@$(BIN)/python -m compileall -q pgbackup_tui

demo: install
	$(BIN)/pgbackup-tui demo

# One worker per core and one more (pytest-xdist): the suite mostly waits on servers and child
# processes, and a third worker on two cores fills that wait (the whole suite on the 2-core VM, idle:
# 520 s with two workers, 432 s with three, 420 s with four). --dist loadfile keeps a file's tests in
# one worker: the snapshot files' tests share a fixed home, and each worker has its own clusters anyway.
# --durations: the slowest tests in every run's log, where the suite's budget (about 10 minutes) is spent.
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; print(len(os.sched_getaffinity(0)) + 1)")
test: lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS)

# ruff, mypy and the import contract (core/ never imports ui/ or textual), as configured in pyproject.toml.
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Rewrite requirements.lock from pyproject.toml's ranges, keeping the pins that still fit;
# `make lock LOCK_ARGS=--upgrade` moves every pin to the newest release its range allows.
lock:
	test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet uv; }
	$(BIN)/uv pip compile pyproject.toml --extra test --extra sandbox --extra dev --universal \
		--output-file requirements.lock $(LOCK_ARGS)

bench: install
	$(BIN)/python scripts/bench_progress.py

# Issue 15's table: each row's figure, its reference and the ratio (minutes; BENCH_ARGS e.g. --scale 0.3).
bench-speed: install
	$(BIN)/python scripts/bench_speed.py $(BENCH_ARGS)

screenshots: install
	$(BIN)/python scripts/take_screenshots.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
