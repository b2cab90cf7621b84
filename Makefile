# NOFX — run `make help` for the targets.
.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/nofxhq/nofx/internal/version.Version=$(VERSION)
VENDOR  := static/vendor/htmx.min.js static/vendor/htmx-sse.min.js

.PHONY: help run test bench build generate check-generated lint vendor clean

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-17s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: vendor generate ## Run NOFX on http://localhost:8080 (SQLite in ./data, no keys needed)
	NOFX_LOG_FORMAT=$${NOFX_LOG_FORMAT:-text} $(GO) run ./cmd/nofx serve

test: vendor ## Run every test (PostgreSQL too when NOFX_TEST_DATABASE_URL is set)
	$(GO) test -count=1 -timeout 30m ./...

bench: ## Engine steps/s vs River's no-op jobs/s, 2,000 runs at 1 s latency and hand-off latency through nofx serve's API, the runs list with 100,000 runs, and GET /api/v1/runs against /api/v1/me (PostgreSQL too when NOFX_TEST_DATABASE_URL is set)
	$(GO) run ./cmd/nofx-bench -go $(GO) -n $${BENCH_RUNS:-10000} -latency-runs $${BENCH_LATENCY_RUNS:-2000}
	$(GO) test -run '^$$' -bench BenchmarkListRuns -benchtime 200x ./internal/runs/
	$(GO) test -run '^$$' -bench 'BenchmarkAPIRuns(List|Create)' -benchtime 2s ./web/

build: vendor generate ## Build bin/nofx: one static binary with every asset embedded
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/nofx ./cmd/nofx

generate: ## Regenerate the templ Go code from views/**/*.templ
	$(GO) tool templ generate

check-generated: generate ## Fail when the committed templ code is stale
	@stale=$$(git status --porcelain -- '*_templ.go'); \
	if [ -n "$$stale" ]; then echo "generated templ code is stale; run make generate and commit:"; echo "$$stale"; exit 1; fi

lint: ## Check formatting (gofmt), run go vet and staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

vendor: $(VENDOR) ## Install the npm packages and build static/vendor/

$(VENDOR) &: package.json package-lock.json scripts/vendor.mjs
	npm ci --no-audit --no-fund
	node scripts/vendor.mjs

clean: ## Remove build output and vendored assets
	rm -rf bin node_modules $(VENDOR)
