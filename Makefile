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

.PHONY: help venv tools run test lint build bench resilience fuzz clean

help:
	@echo "make run    start the whole service locally (moto, API gateway, PBX simulator, demo project)"
	@echo "make test   lint + type check + template checks + sam build + all tests"
	@echo "make lint | build | bench | resilience | fuzz | clean"

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

venv: $(BIN)/.installed
tools: $(TOOLS)/.installed

# `make run DDB_CONFLICT_RATE=0.3`: DynamoDB cancels that share of transactions with TransactionConflict, as on AWS.
DDB_CONFLICT_RATE ?= 0
run: venv
	DDB_CONFLICT_RATE=$(DDB_CONFLICT_RATE) $(BIN)/python -m devstack.run

# A stage's start is taken when make expands its recipe, just before running it (make runs stages one by one).
started = $(eval $(1)_started := $(shell date +%s))
took = echo "== $(1) took $$(( $$(date +%s) - $($(1)_started) )) s"

lint: venv tools
	$(call started,lint)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/common/iptelefon functions iptel_admin devstack
	$(BIN)/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint --region us-east-1
	@$(call took,lint)

build: tools
	$(call started,build)
	$(TOOLS)/bin/sam build --build-dir .aws-sam/build
	@$(call took,build)

# pytest exits 5 when it collected nothing, so `make test` can never pass having run no test.
# Each stage says how long it took; `make test` sums them up at the end (3-9 minutes on a loaded 2-core machine).
test: lint build
	$(call started,pytest)
	$(BIN)/python -m pytest
	@$(call took,pytest)
	@echo "== make test: lint $$(( $(build_started) - $(lint_started) )) s, build $$(( $(pytest_started) - \
	$(build_started) )) s, pytest $$(( $$(date +%s) - $(pytest_started) )) s"

bench: venv build
	$(BIN)/python -m bench.run

# Never lose a call: 50 concurrent webhooks with 30 % DynamoDB conflicts, 500 webhooks during a 60 s outage (~4 min).
resilience: venv
	$(BIN)/python -m bench.resilience

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .local .mypy_cache .ruff_cache .pytest_cache .hypothesis

# A long fuzz of every route through the real local stack (>= 10,000 generated requests; `make test` runs a bounded
# one with FUZZ_EXAMPLES=25 per test). Prints how many requests each test sent and their statuses.
FUZZ_EXAMPLES ?= 200
fuzz: venv
	FUZZ_RANDOM=1 FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_MIN_CASES=10000 $(BIN)/python -m pytest tests/fuzz -p no:cacheprovider -q -s
