# smyth: the commands a newcomer needs. `make run` serves examples/, `make test` runs every test.
CARGO ?= cargo
VENV := target/venv
PY := $(VENV)/bin/python

.PHONY: build run test lint bench venv browser clean

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

# The dashboard test drives a real browser: Debian's Chromium, installed when missing.
browser:
	@command -v chromium >/dev/null || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium; }

# cargo-nextest when the machine has it, plain cargo test otherwise.
test: venv browser
	export SMYTH_TEST_PYTHON=$(abspath $(PY)) SMYTH_TEST_BROWSER=$$(command -v chromium); \
	if $(CARGO) nextest --version >/dev/null 2>&1; then $(CARGO) nextest run --workspace --no-fail-fast; \
	else $(CARGO) test --workspace --no-fail-fast; fi

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: build
	bash bench/run.sh

clean:
	$(CARGO) clean
