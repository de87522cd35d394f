# smyth: the commands a newcomer needs. `make run` serves examples/, `make test` runs every test.
CARGO ?= cargo
VENV := target/venv
PY := $(VENV)/bin/python

.PHONY: build run test lint bench venv clean

build:
	$(CARGO) build --release

run: build
	cd examples && ../target/release/smyth run

# Test-only Python packages (boto3, …) live in a virtualenv under target/.
venv: $(VENV)/.ready
$(VENV)/.ready: tests/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

test: venv
	SMYTH_TEST_PYTHON=$(abspath $(PY)) $(CARGO) nextest run --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: build
	bash bench/run.sh

clean:
	$(CARGO) clean
