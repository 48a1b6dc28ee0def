# voxray — `make demo` and `make test` work on a fresh machine with only Python.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
# The headless browser the HTML repr's test renders in (see the rule below)
CHROMIUM ?= /usr/bin/chromium

.PHONY: demo test bench bench-scale fuzz lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[plot]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test]'
	touch $(VENV)/.installed $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test,bench]'
	touch $(VENV)/.installed $(VENV)/.installed-test $@

## demo: describe nibabel's example4d.nii.gz, compute its mean volume lazily and draw it
## (demo-output/*.png)
demo: $(VENV)/.installed
	$(BIN)/python examples/demo.py

## test: the whole suite (slow tests included), plus lint; the HTML repr's browser test
## needs Chromium (installed from Debian's archive when missing) and fails without it
test: $(VENV)/.installed-test $(CHROMIUM)
	$(BIN)/ruff check src tests benchmarks examples
	VOXRAY_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -n 2

## Debian's headless Chromium, for tests/test_html_repr.py (root installs it with apt-get;
## anyone else is told how, and the browser test then fails saying so)
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium (for the HTML repr's browser test)"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends chromium; \
	else \
		echo "warning: $@ is missing and only root can apt-get it: run" \
			"'apt-get install --no-install-recommends chromium' as root, or set" \
			"VOXRAY_CHROMIUM; the browser test fails without it" >&2; \
	fi

## bench: realistic >= 600 MB images, voxray vs each peer's fastest call, 5 alternating
## runs (median and minimum ratios, CPU, page faults, peak RSS; JSON in benchmarks/results,
## redrawn as docs/bench/bench-ratios.png);
## then a 641 MB 4-D MGZ, a 2.15 GB dense connectome (CIFTI-2) and pictures (plot_ortho
## vs the nibabel walkthrough, and of a 28 GB .nii, larger than memory: ~43 GB free disk);
## resample, smooth, mask + clean, seed correlation vs nilearn (and on a 26 GB image)
bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/figure.py
	$(BIN)/python benchmarks/mgh.py
	$(BIN)/python benchmarks/cifti.py
	$(BIN)/python benchmarks/plot.py
	$(BIN)/python benchmarks/processing.py

## bench-scale (not in CI): a 4-D image larger than memory (RAM + 5%, from the realistic
## series) and its gzip -1 .nii.gz: read, mean over t, to Zarr and .nii.gz, on threads and
## a 2-process cluster; ~80 GB free disk; report in benchmarks/results/scale.json
bench-scale: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/scale.py

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
