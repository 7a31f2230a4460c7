# Both targets create the virtualenv .venv and install elc into it on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROMPT ?= The capital of France is

.PHONY: run test install clean

$(BIN)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/python -m launch.sample --config=configs/gemma3_270m.py --prompt="$(PROMPT)"

test: install
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
