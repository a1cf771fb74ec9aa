# Two commands for a newcomer: `make run` and `make test`. Everything else is installed by these targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .venv-tools
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# pip on this machine warns about local mirror folders it does not have; keep the output readable.
PIP_QUIET := 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)

.PHONY: help venv tools checkov browser screenshots run test lint build bench bench-build bench-card bench-events bench-stats bench-recordings resilience fuzz rule-check clean

help:
	@echo "make run    start the whole service locally (moto, API gateway, PBX simulator, demo project)"
	@echo "make test   lint + type check + template checks + sam build + all tests"
	@echo "make lint | build | bench | bench-card | bench-events | bench-stats | bench-recordings | resilience | fuzz | rule-check | screenshots | clean"

$(BIN)/.installed: requirements-dev.txt layers/common/requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the project into $(VENV) ..."
	@$(BIN)/pip install -q -r requirements-dev.txt $(PIP_QUIET)
	@$(BIN)/pip install -q --no-deps -e . $(PIP_QUIET)
	@touch $@

# aws-sam-cli pins older boto3/pydantic/click: it gets a virtualenv of its own.
$(TOOLS)/.installed: requirements-tools.txt
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	@echo "installing aws-sam-cli into $(TOOLS) ..."
	@$(TOOLS)/bin/pip install -q -r requirements-tools.txt $(PIP_QUIET)
	@touch $@

# checkov (the template's security scan) pins many packages of its own, too.
CHECKOV := .venv-checkov
$(CHECKOV)/.installed: requirements-checkov.txt
	@test -x $(CHECKOV)/bin/python || $(PYTHON) -m venv $(CHECKOV)
	@echo "installing checkov into $(CHECKOV) ..."
	@$(CHECKOV)/bin/pip install -q -r requirements-checkov.txt $(PIP_QUIET)
	@touch $@

venv: $(BIN)/.installed
tools: $(TOOLS)/.installed
checkov: $(CHECKOV)/.installed

# The console's browser tests drive Debian's Chromium with Playwright (Playwright's own browser download cannot reach
# the internet here). Installed once, by apt (as root, or through sudo).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(CHROMIUM):
	@echo "installing Debian's chromium for the browser tests ..."
	@$(SUDO) apt-get install -y -q chromium >/dev/null 2>&1 || \
		($(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium >/dev/null)
browser: $(CHROMIUM)

# The README's console screenshots, from a running `make run`.
screenshots: venv browser
	$(BIN)/python -m devstack.screenshots --state-dir $(or $(STATE_DIR),.local) --out docs

# `make run DDB_CONFLICT_RATE=0.3`: DynamoDB cancels that share of transactions with TransactionConflict, as on AWS.
DDB_CONFLICT_RATE ?= 0
# `make run PBX_DIALECT=classic`: the PBX simulator speaks contract section 1's dialect instead of zeon's.
PBX_DIALECT ?= zeon
run: venv
	DDB_CONFLICT_RATE=$(DDB_CONFLICT_RATE) PBX_DIALECT=$(PBX_DIALECT) FRESH=$(FRESH) DEMO_HISTORY=$(or $(DEMO_HISTORY),1) \
		$(BIN)/python -m devstack.run

# A stage's start is taken when make expands its recipe, just before running it (make runs stages one by one).
started = $(eval $(1)_started := $(shell date +%s))
took = echo "== $(1) took $$(( $$(date +%s) - $($(1)_started) )) s"

lint: venv tools checkov
	$(call started,lint)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/common/iptelefon functions iptel_admin devstack
	$(BIN)/lint-imports  # the rooms of the layer: [tool.importlinter] in pyproject.toml
	$(BIN)/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint --region us-east-1
	$(CHECKOV)/bin/checkov --config-file .checkov.yaml  # skips and their reasons: .checkov.yaml, README (Deploy)
	@$(call took,lint)

# The runtime's Python (template.yaml's Runtime, e.g. python3.13) compiles what the build ships, and SAM finds it first
# on PATH (it builds the layer's wheels for that version). On PATH or pyenv's (devstack/runtime_python.py); the dev
# virtualenv may be on another version (3.11 and up).
RUNTIME := $(shell sed -n 's/^ *Runtime: *\(python[0-9.]*\).*/\1/p' template.yaml | head -n 1)
RUNTIME_PYTHON = $(shell $(PYTHON) devstack/runtime_python.py $(RUNTIME))

# `sam build`, then every module of the layer and of each function compiled for the runtime's exact Python, next to
# its source (__pycache__/*.cpython-3XX.pyc, which `sam package` zips as it zips the rest). A layer lives on a read-only
# path: without these, every cold start compiles everything it imports. unchecked-hash: the zip's timestamps (1980)
# do not matter. $(1): template, $(2): build dir.
define sam_build
	@test -n "$(RUNTIME_PYTHON)"
	PATH="$(dir $(RUNTIME_PYTHON)):$$PATH" $(TOOLS)/bin/sam build --template $(1) --base-dir . --build-dir $(2)
	$(RUNTIME_PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash $(2)
endef

build: tools
	$(call started,build)
	$(call sam_build,template.yaml,.aws-sam/build)
	@$(call took,build)

# pytest exits 5 when it collected nothing, so `make test` can never pass having run no test.
# Each stage says how long it took; `make test` sums them up at the end (3-9 minutes on a loaded 2-core machine).
test: lint build browser
	$(call started,pytest)
	$(BIN)/python -m pytest
	@$(call took,pytest)
	@echo "== make test: lint $$(( $(build_started) - $(lint_started) )) s, build $$(( $(pytest_started) - \
	$(build_started) )) s, pytest $$(( $$(date +%s) - $(pytest_started) )) s"

# The bench runs the code as shipped on this machine: the same recipe for this machine's architecture when it is not
# the template's (the layer has compiled extensions, e.g. pydantic_core). Rebuilt when a source changed.
HOST_ARCH := $(shell uname -m | sed 's/aarch64/arm64/')
BENCH_BUILD := .aws-sam/bench-build
$(BENCH_BUILD)/template.yaml: template.yaml layers/common/requirements.txt $(shell find layers functions -name '*.py')
	@mkdir -p .aws-sam
	sed -E 's/\barm64\b/$(HOST_ARCH)/g' template.yaml > .aws-sam/bench-template.yaml
	$(call sam_build,.aws-sam/bench-template.yaml,$(BENCH_BUILD))
bench-build: tools $(BENCH_BUILD)/template.yaml

bench: venv build bench-build
	$(BIN)/python -m bench.run --build-dir $(BENCH_BUILD)

# The incoming-call card: RINGING webhook -> visible in GET /v1/calls/live polled at 1 s, and on the console's page.
bench-card: venv browser
	$(BIN)/python -m bench.live_card

# Recordings (issue 25): copy done p95 after the link arrives on the local stack, 0 broken links once the PBX's links
# die, and the memory of a 50 MB copy (~1 min).
bench-recordings: venv
	$(BIN)/python -m bench.recordings

# Never lose a call: 50 concurrent webhooks with 30 % DynamoDB conflicts, 500 webhooks during a 60 s outage (~4 min).
resilience: venv
	$(BIN)/python -m bench.resilience

# Call events out (issue 22) on the local stack: event -> delivered p95, an endpoint down for a simulated hour, 50
# endpoints of which 10 fail. Figures printed and written to bench/events.json.
bench-events: venv
	$(BIN)/python -m bench.events

# Missed calls' statistics (issue 23): /v1/stats for 30 days over 100,000 calls (p95, DynamoDB reads), and the
# counters equal to a recount after 10,000 webhooks with 30 % conflicts and replays (the local stack takes ~10
# webhooks/s on a loaded 2-core machine: about 20 minutes, after 10 of storing calls for the read part;
# `make bench-stats WEBHOOKS=2000` for a shorter run).
bench-stats: venv
	$(BIN)/python -m bench.stats --webhooks $(or $(WEBHOOKS),10000)

# Every rule guarded: each rule of tests/rule_deletions.py is deleted in a copy of HEAD and its tests must fail.
rule-check: venv
	$(BIN)/python tests/rule_deletions.py

clean:
	rm -rf $(VENV) $(TOOLS) $(CHECKOV) .aws-sam .local .mypy_cache .ruff_cache .pytest_cache .hypothesis

# A long fuzz of every route through the real local stack (>= 10,000 generated requests; `make test` runs a bounded
# one with FUZZ_EXAMPLES=25 per test). Prints how many requests each test sent and their statuses.
FUZZ_EXAMPLES ?= 200
fuzz: venv
	FUZZ_RANDOM=1 FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_MIN_CASES=10000 $(BIN)/python -m pytest tests/fuzz -p no:cacheprovider -q -s
