# The platform's build. Two commands matter on a fresh machine:
#   make dev    runs the whole platform (Temporal dev server, migrations, worker, API)
#   make test   runs vet, format and lint checks and the whole test suite
SHELL := /bin/bash
GO ?= go
TEMPORAL_CLI_VERSION := v1.5.1
STATICCHECK_VERSION := v0.8.2
BIN := $(CURDIR)/bin
export PLATFORM_TEMPORAL_CLI := $(BIN)/temporal

.PHONY: dev build test vet fmt-check tidy-check lint unit fuzz chaos bench-api bench-jobs bench-flags clean

# The pinned Temporal CLI is the dev server; it is built once from the Go
# module proxy (about 5 minutes cold) and reused while bin/temporal exists.
$(BIN)/temporal:
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

build:
	$(GO) build -trimpath -o $(BIN)/platform ./cmd/platform

dev: $(BIN)/temporal build
	$(BIN)/platform dev

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# go.mod and go.sum must be what `go mod tidy` makes of them: direct
# requirements not marked indirect, nothing missing, nothing unused.
tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

lint: $(BIN)/staticcheck
	$(BIN)/staticcheck ./...

# Unit, integration and end-to-end tests against the real Postgres, Redis and
# a Temporal dev server that the tests start on free ports.
unit: $(BIN)/temporal
	$(GO) test -count=1 -timeout 20m ./...

test: tidy-check vet fmt-check lint unit fuzz

# Each fuzz target runs its seed corpus and a fixed number of new inputs (a
# count, not a duration: a deadline can end a run mid-input and fail it).
FUZZ_TIME ?= 10000x
fuzz:
	@$(GO) test -list 'Fuzz.*' ./... 2>/dev/null | awk '/^Fuzz/ {names[n++]=$$1} /^ok/ {for (i = 0; i < n; i++) print $$2, names[i]; n = 0}' | \
	while read -r pkg target; do \
		echo "fuzz $$pkg $$target"; \
		$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZ_TIME) "$$pkg" || exit 1; \
	done

clean:
	rm -rf $(BIN)/platform .dev

# Capacity on a short ramp, then db_degraded and cache_degraded once each, on
# loopback with an in-process Toxiproxy: one table of scenario, verdict and
# key measurements (knee per endpoint class, 500s, sheds, invariants).
chaos: $(BIN)/temporal
	set -o pipefail; PLATFORM_CHAOS=1 $(GO) test -run '^TestChaos_Suite$$' -count 1 -timeout 20m -v ./tests/ | grep -v '^=== RUN\|level=\|DEBUG\|INFO\|WARN'

# GET /v1/keys/{id} through the whole middleware stack against a bare handler
# running the same query, 32 connections, one run; prints the ratio.
bench-api: $(BIN)/temporal
	$(GO) test -run '^$$' -bench BenchmarkAPIKeysGet -benchtime 1x -count 1 ./tests/

# Webhook jobs through POST /v1/jobs against raw client.ExecuteWorkflow of the
# same workflow on the same dev server and worker: accepted/s and completed/s
# for both, and both ratios. BENCH_JOBS_N jobs per path, BENCH_JOBS_CONCURRENCY
# clients; the worker takes PLATFORM_WORKER_* from the environment.
BENCH_JOBS_N ?= 400
BENCH_JOBS_CONCURRENCY ?= 32
bench-jobs: $(BIN)/temporal
	set -o pipefail; PLATFORM_BENCH_JOBS=1 PLATFORM_BENCH_JOBS_N=$(BENCH_JOBS_N) PLATFORM_BENCH_JOBS_CONCURRENCY=$(BENCH_JOBS_CONCURRENCY) \
		$(GO) test -run '^TestBenchJobs$$' -count 1 -timeout 15m -v ./tests/ | grep -v '^=== RUN\|^--- \|level='

# Flag evaluation in process (the evaluator alone, the OpenFeature provider,
# and the OpenFeature client with the platform hook; static, targeting and
# fractional flags) and OFREP evaluations through the API's whole handler
# stack: ns/op, allocs/op and req/s.
bench-flags: $(BIN)/temporal
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./flags/ ./flags/provider/
	$(GO) test -run '^$$' -bench BenchmarkOFREP -benchmem -count 1 ./tests/
