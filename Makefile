# smyth: the commands a newcomer needs. `make run` serves examples/, `make test` runs every test.
CARGO ?= cargo
VENV := target/venv
PY := $(VENV)/bin/python
# One cargo profile for run, test and the wheel, so a fresh `make run && make test` compiles the
# workspace once (README: "Build times"). `make bench` measures the `release` build users install.
PROFILE ?= local

.PHONY: build run test lint bench venv browser wheel clean

build:
	$(CARGO) build --profile $(PROFILE)

run: build
	cd examples && ../target/$(PROFILE)/smyth run

# Test-only Python packages (boto3, cfn-lint, maturin, …) live in a virtualenv under target/.
venv: $(VENV)/.ready
$(VENV)/.ready: tests/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

# The `smyth-rs` wheel (maturin, bin bindings) into target/wheels/.
wheel: venv
	cd python && ../$(VENV)/bin/maturin build --profile $(PROFILE) --out ../target/wheels

# The dashboard test drives a real browser: Debian's Chromium, installed when missing.
browser:
	@command -v chromium >/dev/null || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium; }

# cargo-nextest when the machine has it, plain cargo test otherwise. The suite runs with its own
# TMPDIR and fails if it leaves any `smyth-*` temp dir behind.
test: venv browser
	@export SMYTH_REQUIRE_TOOLS=1 SMYTH_TEST_PYTHON=$(abspath $(PY)) SMYTH_TEST_BROWSER=$$(command -v chromium); \
	suite_tmp=$$(mktemp -d); export TMPDIR=$$suite_tmp; \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast --cargo-profile $(PROFILE); \
	else $(CARGO) test --workspace --no-fail-fast --profile $(PROFILE); fi; status=$$?; \
	left=$$(find $$suite_tmp -name 'smyth-*' -prune | head -20); rm -rf $$suite_tmp; \
	if [ -n "$$left" ]; then echo "the tests left temp dirs behind:"; echo "$$left"; exit 1; fi; \
	exit $$status

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench:
	$(CARGO) build --release
	bash bench/run.sh

clean:
	$(CARGO) clean
