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
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .dagster_home
