# b24-1c: every target creates or reuses .venv and installs the pinned dependencies itself.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo dev test bench clean

$(STAMP): pyproject.toml setup.cfg requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python -m b24_1c_assets.demo

dev: install
	$(BIN)/python -m b24_1c_assets.dev

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -p no:cacheprovider

# `make bench BENCH="scale world"` runs only those benches; `BENCH_QUICK=1` small sizes;
# `BENCH_SCALES=1000,10000,100000` adds the 100k full_sync to bench_scale (default 1000,10000; 100k: ~12 wall minutes, sandbox ~8.3 GB).
BENCH ?=
bench: install
	$(BIN)/python -m benchmarks $(BENCH)

clean:
	rm -rf $(VENV) build *.egg-info .dagster_home
