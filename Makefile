# Lab's tasks. `make help` lists them; the README and .ci/run call these.

SHELL := /bin/bash
# Two environments, kept apart: `.venv` holds Lab built in release, as users
# get it (`make demo`, the benchmarks, `make soak`); `.venv-test` holds a
# debug build and the test tools (`make test`, `make develop`).
VENV ?= .venv
TEST_VENV ?= .venv-test
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TPY := $(TEST_VENV)/bin/python
TPIP := $(TEST_VENV)/bin/pip
# A third environment for the integration tests: the training frameworks and
# the other trackers Lab hooks into or imports from (gigabytes with PyTorch),
# kept out of the other two.
INT_VENV ?= .venv-int
IPY := $(INT_VENV)/bin/python
TEST_DEPS := maturin pytest pytest-xdist hypothesis mypy numpy pandas pyarrow scikit-learn joblib playwright schemathesis pillow matplotlib
export CARGO_TERM_COLOR ?= never

# Builds Lab into the environment $(1) in the cargo profile $(2) (dev or
# release): first the native `lab` command, which packaging/lab_build.py
# stages as the wheel's script, then the extension module with maturin,
# which installs both. The two builds share every compiled dependency.
# (maturin would warn that pip builds through packaging/lab_build.py.)
define install_lab
	$(1)/bin/python packaging/lab_build.py --locked --profile $(2)
	MATURIN_NO_MISSING_BUILD_BACKEND_WARNING=1 VIRTUAL_ENV=$$PWD/$(1) $(1)/bin/maturin develop -q$(if $(filter release,$(2)), --release)
endef

.PHONY: help demo test test-rust test-python test-integrations lint fmt develop bench venv test-venv int-venv soak

help: ## List the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(PY):
	python3 -m venv $(VENV)

$(TPY):
	python3 -m venv $(TEST_VENV)

venv: $(PY) ## Make .venv (Lab in release, for use and benchmarks) with the tools the benchmarks need
	$(PIP) install -q --disable-pip-version-check $(TEST_DEPS)

$(IPY):
	python3 -m venv $(INT_VENV)

int-venv: $(IPY) ## Make .venv-int with the frameworks and trackers of tests/integrations/requirements.txt (large)
	$(INT_VENV)/bin/pip install -q --disable-pip-version-check -r tests/integrations/requirements.txt

test-venv: $(TPY) ## Make .venv-test with Lab's build and test tools
	$(TPIP) install -q --disable-pip-version-check $(TEST_DEPS)

demo: $(PY) ## Build Lab (release) into .venv, run the iris example in examples/, then `lab ls`
	$(PIP) install -q --disable-pip-version-check maturin scikit-learn joblib
	$(call install_lab,$(VENV),release)
	cd examples && ../$(PY) iris.py --seed 1 && ../$(PY) iris.py --seed 2 && ../$(VENV)/bin/lab ls
	@echo
	@echo "Lab is installed in $(VENV). To put \`lab\` on your PATH:  source $(VENV)/bin/activate"

develop: test-venv ## Build Lab (debug) into .venv-test
	$(call install_lab,$(TEST_VENV),dev)

test: lint test-rust test-python test-integrations ## Run every check and test: what CI runs

test-rust: ## Build the workspace and run the Rust tests
	cargo build --workspace --all-targets --locked
	if command -v cargo-nextest >/dev/null; then \
	  cargo nextest run --workspace --locked --no-fail-fast; \
	else \
	  cargo test --workspace --locked --no-fail-fast; \
	fi
	cargo test --workspace --doc --locked

# Two workers: most tests wait on the processes and services they start, so
# two at once take a little over half the time on two cores. A file's tests
# stay on one worker (they share its fixtures: servers, clusters).
test-python: develop ## Run the Python tests against a debug build (two at a time), and check the type stubs
	$(TPY) -m mypy.stubtest lab._lab
	$(TPY) -m pytest -q -n 2 --dist loadfile tests --ignore=tests/integrations

test-integrations: int-venv ## Run tests/integrations in .venv-int: Lab inside Keras, Lightning, Transformers, XGBoost, ...; importers
	$(call install_lab,$(INT_VENV),dev)
	$(IPY) -m pytest -q tests/integrations

lint: ## Formatting, clippy (pedantic, warnings are errors), crate dependency direction, no module circles
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	python3 .ci/check-deps
	python3 .ci/check-cycles

fmt: ## Format the Rust code
	cargo fmt --all

bench: venv ## Run the benchmarks (release build) and print medians
	$(call install_lab,$(VENV),release)
	$(PY) benches/run.py

bench-sysmetrics: venv ## The system metrics sampler's CPU at 5 s and 1 s, and log_metric beside it (release build, 4 minutes)
	$(call install_lab,$(VENV),release)
	$(PY) benches/system_metrics.py

bench-runcost: venv ## A run's cost from start to end: 1,000 short runs (10 params, 10 metrics) in one process (release build)
	VIRTUAL_ENV=$$PWD/$(VENV) $(VENV)/bin/maturin develop --release -q
	$(PY) benches/run_cost.py

bench-ui: venv ## The web UI's speed: runs API, a 10M-point series, Chromium's first rows and compare of 20 runs, JS size
	$(call install_lab,$(VENV),release)
	$(PY) benches/ui.py

soak: venv ## 1,000 random kill -9 rounds, then 16 writers and 4 readers for 10 minutes (release build)
	$(call install_lab,$(VENV),release)
	$(PY) tests/soak.py --rounds 1000 --writers 16 --readers 4 --minutes 10

.PHONY: bench-sysmetrics bench-runcost bench-ui bench-peers bench-peers-quick bench-team bench-team-quick bench-epochs

bench-peers: ## Benchmark Lab against MLflow, Aim and W&B side by side (docs/benchmarks.md)
	python3 benches/peers/run.py

bench-peers-quick: ## The side-by-side benchmarks at small sizes, Lab in its debug build: a smoke run of every scenario
	python3 benches/peers/run.py --quick --lab-profile dev

bench-epochs: int-venv ## A Keras and a Lightning epoch with and without Lab, MLflow autolog and W&B beside (docs/benchmarks.md)
	python3 benches/epochs/run.py

bench-team: venv ## Team mode (release): streaming cost, ingest, visibility, runs API, push; MLflow and Aim servers beside
	$(call install_lab,$(VENV),release)
	$(PY) benches/team.py

bench-team-quick: venv ## The team-mode benchmarks at small sizes: a smoke run of every scenario
	$(call install_lab,$(VENV),release)
	$(PY) benches/team.py --quick --json bench-out/team-quick.json --md bench-out/team-quick.md
