# voxray — `make demo` and `make test` work on a fresh machine with only Python.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test bench fuzz lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test]'
	touch $(VENV)/.installed $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test,bench]'
	touch $(VENV)/.installed $(VENV)/.installed-test $@

## demo: describe nibabel's example4d.nii.gz and compute its mean volume lazily
demo: $(VENV)/.installed
	$(BIN)/python examples/demo.py

## test: the whole suite (slow tests included), plus lint
test: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/python -m pytest -n 2

## bench: realistic >= 600 MB images, voxray vs nibabel in one run (ratios, peak RSS);
## then a 641 MB 4-D MGZ and a 2.15 GB dense connectome (CIFTI-2)
bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/mgh.py
	$(BIN)/python benchmarks/cifti.py

## fuzz: the long fuzz campaign (100,000 damaged files of every format, in worker
## processes under memory and time limits); report in benchmarks/results/fuzz.json
FUZZ_CASES ?= 100000
FUZZ_SEED  ?= 0
fuzz: $(VENV)/.installed-test
	$(BIN)/python -m voxray.testing.fuzz --cases $(FUZZ_CASES) --seed $(FUZZ_SEED) \
		--json benchmarks/results/fuzz.json

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

format: $(VENV)/.installed-test
	$(BIN)/ruff format src tests benchmarks examples
	$(BIN)/ruff check --fix src tests benchmarks examples

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build dist src/*.egg-info
