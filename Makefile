# Two commands from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test install bench screenshots clean

$(BIN)/pgbackup-tui: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,sandbox]'
	@touch $@

install: $(BIN)/pgbackup-tui

demo: install
	$(BIN)/pgbackup-tui demo

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: install
	$(BIN)/python scripts/bench_progress.py

screenshots: install
	$(BIN)/python scripts/take_screenshots.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
