# The platform's build. Two commands matter on a fresh machine:
#   make dev    runs the whole platform (Temporal dev server, migrations, worker, API)
#   make test   runs vet, format and lint checks and the whole test suite
SHELL := /bin/bash
GO ?= go
TEMPORAL_CLI_VERSION := v1.5.1
STATICCHECK_VERSION := v0.8.2
CYCLONEDX_GOMOD_VERSION := v1.10.0
BIN := $(CURDIR)/bin
export PLATFORM_TEMPORAL_CLI := $(BIN)/temporal
export PLATFORM_JAEGER := $(BIN)/jaeger

.PHONY: dev build test vet fmt-check tidy-check lint unit fuzz chaos soak bench-api bench-jobs bench-flags bench-pages bench-scaling clean slo-rules release release-binary

# The pinned Temporal CLI is the dev server; it is built once from the Go
# module proxy (about 5 minutes cold) and reused while bin/temporal exists.
$(BIN)/temporal:
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

# Jaeger v1.76.0 is the real OTLP receiver of the trace export test. Its
# 330-line go.mod lives in its own module (tools/jaeger) so none of it
# reaches the platform's; built once (about 12 minutes and 2.4 GB cold)
# and reused while bin/jaeger exists.
$(BIN)/jaeger:
	cd tools/jaeger && $(GO) build -trimpath -o $(BIN)/jaeger github.com/jaegertracing/jaeger/cmd/jaeger

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# The SBOM generator, built from the Go module proxy with its own go.mod
# (go install pkg@version), so its dependencies stay out of ours.
$(BIN)/cyclonedx-gomod:
	GOBIN=$(BIN) $(GO) install github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@$(CYCLONEDX_GOMOD_VERSION)

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
unit: $(BIN)/temporal $(BIN)/jaeger
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

# The SLO recording and burn-rate alert rules, generated with Sloth from the
# SLO spec by tools/slogen (its own module, so Sloth's Prometheus and
# Kubernetes dependencies stay out of go.mod). TestSLORules_MatchSpec fails
# when the committed rules differ from a fresh generation.
slo-rules:
	cd tools/slogen && $(GO) run . -in $(CURDIR)/deploy/slo/slos.yaml -out $(CURDIR)/deploy/prometheus/slo-rules.yaml

clean:
	rm -rf $(BIN)/platform $(RELEASE_DIR) .dev

# A release is the same bytes wherever it is built from the same commit:
# no paths (-trimpath), no cgo, no build id, and the commit stamped in by
# -buildvcs=true (which overrides a GOFLAGS=-buildvcs=false in the
# environment); `go version -m` shows vcs.revision and vcs.modified. The
# toolchain is part of the recipe: go.mod's go line and the CI image pin it.
# The go command stamps nothing in a `git worktree` checkout (its .git is a
# file, not a directory), so an unstamped binary fails the rule: release
# from a clone. tests/release builds twice in separate clones and compares
# the sha256.
RELEASE_DIR ?= $(BIN)/release
RELEASE_GOFLAGS := -trimpath -buildvcs=true -ldflags=-buildid=
release-binary:
	mkdir -p $(RELEASE_DIR)
	CGO_ENABLED=0 $(GO) build $(RELEASE_GOFLAGS) -o $(RELEASE_DIR)/platform ./cmd/platform
	@$(GO) version -m $(RELEASE_DIR)/platform | grep -q 'vcs\.revision=' || { \
	  echo "$(RELEASE_DIR)/platform has no vcs.revision: build the release from a git clone (not a worktree)"; \
	  rm -f $(RELEASE_DIR)/platform; exit 1; }

# The binary, its CycloneDX SBOM and their checksums, side by side. The SBOM
# is read from the binary's own build info (cyclonedx-gomod bin): exactly
# the modules linked into it, with their go.sum hashes, the Go standard
# library's version and the main module's pseudo-version from the stamped
# commit; no serial number or timestamp, so it is reproducible too.
release: release-binary $(BIN)/cyclonedx-gomod
	$(BIN)/cyclonedx-gomod bin -json -std -noserial -notimestamp -output $(RELEASE_DIR)/platform.cdx.json $(RELEASE_DIR)/platform
	cd $(RELEASE_DIR) && sha256sum platform platform.cdx.json > SHA256SUMS
	$(GO) version -m $(RELEASE_DIR)/platform | grep -E 'vcs\.(revision|time|modified)|-trimpath|CGO_ENABLED'

# Capacity on a short ramp, then db_degraded and cache_degraded once each, on
# loopback with an in-process Toxiproxy: one table of scenario, verdict and
# key measurements (knee per endpoint class, 500s, sheds, invariants).
chaos: $(BIN)/temporal
	set -o pipefail; PLATFORM_CHAOS=1 $(GO) test -run '^TestChaos_Suite$$' -count 1 -timeout 20m -v ./tests/ | grep -v '^=== RUN\|level=\|"level":"trace"\|DEBUG\|INFO\|WARN'

# Steady load against a separate "platform api" process, printing its RSS and
# goroutines at start, middle and end. SOAK_DURATION (default 10m) and
# SOAK_RATE (requests/s, default 1000) override; not part of make test.
soak: $(BIN)/temporal
	set -o pipefail; PLATFORM_SOAK=1 SOAK_DURATION=$${SOAK_DURATION:-10m} SOAK_RATE=$${SOAK_RATE:-1000} $(GO) test -run '^TestSoak$$' -count 1 -timeout 0 -v ./tests/ | grep -v '^=== RUN\|level=\|DEBUG\|INFO\|WARN'

# GET /v1/keys/{id} through the whole middleware stack against a bare handler
# running the same query, 32 connections, one run; prints the ratio.
# BENCH_TRACE_EXPORT=1 runs the full stack with spans exported (ratio 1,
# batched OTLP/HTTP to a receiver in the test) and Postgres and Redis
# traced; the bare side stays untraced.
bench-api: $(BIN)/temporal
	PLATFORM_BENCH_TRACE_EXPORT=$(BENCH_TRACE_EXPORT) $(GO) test -run '^$$' -bench BenchmarkAPIKeysGet -benchtime 1x -count 1 ./tests/

# Webhook jobs through POST /v1/jobs against raw client.ExecuteWorkflow of the
# same workflow on the same dev server and worker: accepted/s and completed/s
# for both, and both ratios. BENCH_JOBS_N jobs per path, BENCH_JOBS_CONCURRENCY
# clients; the worker takes PLATFORM_WORKER_* from the environment.
BENCH_JOBS_N ?= 400
BENCH_JOBS_CONCURRENCY ?= 32
bench-jobs: $(BIN)/temporal
	set -o pipefail; PLATFORM_BENCH_JOBS=1 PLATFORM_BENCH_JOBS_N=$(BENCH_JOBS_N) PLATFORM_BENCH_JOBS_CONCURRENCY=$(BENCH_JOBS_CONCURRENCY) \
		$(GO) test -run '^TestBenchJobs$$' -count 1 -timeout 15m -v ./tests/ | grep -v '^=== RUN\|^--- \|level='

# Keyset pagination at depth: 100k jobs and 100k keys of one principal
# (COPY into a test database), the first page against the page at depth 100k
# reached by cursor and against OFFSET at the same depth, in one run; prints
# deep/first (goal <= 1.2) and OFFSET/deep (goal >= 20x).
bench-pages:
	set -o pipefail; PLATFORM_BENCH_PAGES=1 $(GO) test -run '^TestBenchPages$$' -count 1 -timeout 10m -v ./tests/ | grep -v '^=== RUN\|^--- \|level='

# The same burst of slow webhook jobs drained by one fixed worker process and
# by a pool under the autoscaler (local driver, min 1, max 4) in one run:
# both drain times and their ratio. BENCH_SCALING_N jobs of 1 s each.
BENCH_SCALING_N ?= 60
bench-scaling: $(BIN)/temporal
	set -o pipefail; PLATFORM_BENCH_SCALING=1 PLATFORM_BENCH_SCALING_N=$(BENCH_SCALING_N) \
		$(GO) test -run '^TestBenchScaling$$' -count 1 -timeout 15m -v ./tests/ | grep -v '^=== RUN\|^--- \|level=\|INFO'

# Flag evaluation in process (the evaluator alone, the OpenFeature provider,
# and the OpenFeature client with the platform hook; static, targeting and
# fractional flags) and OFREP evaluations through the API's whole handler
# stack: ns/op, allocs/op and req/s.
bench-flags: $(BIN)/temporal
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./flags/ ./flags/provider/
	$(GO) test -run '^$$' -bench BenchmarkOFREP -benchmem -count 1 ./tests/
