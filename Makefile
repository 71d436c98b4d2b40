# The platform's build. Two commands matter on a fresh machine:
#   make dev    runs the whole platform (Temporal dev server, migrations, worker, API)
#   make test   runs vet, format and lint checks and the whole test suite
SHELL := /bin/bash
GO ?= go
TEMPORAL_CLI_VERSION := v1.5.1
STATICCHECK_VERSION := v0.8.2
BIN := $(CURDIR)/bin
export PLATFORM_TEMPORAL_CLI := $(BIN)/temporal

.PHONY: dev build test vet fmt-check lint unit fuzz bench-api bench-jobs clean

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

lint: $(BIN)/staticcheck
	$(BIN)/staticcheck ./...

# Unit, integration and end-to-end tests against the real Postgres, Redis and
# a Temporal dev server that the tests start on free ports.
unit: $(BIN)/temporal
	$(GO) test -count=1 -timeout 20m ./...

test: vet fmt-check lint unit fuzz

# Each fuzz target runs its seed corpus and a few seconds of new inputs.
FUZZ_TIME ?= 5s
fuzz:
	@$(GO) test -list 'Fuzz.*' ./... 2>/dev/null | awk '/^Fuzz/ {names[n++]=$$1} /^ok/ {for (i = 0; i < n; i++) print $$2, names[i]; n = 0}' | \
	while read -r pkg target; do \
		echo "fuzz $$pkg $$target"; \
		$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZ_TIME) "$$pkg" || exit 1; \
	done

clean:
	rm -rf $(BIN)/platform .dev

# GET /v1/keys/{id} through the whole middleware stack against a bare handler
# running the same query, 32 connections, one run; prints the ratio.
bench-api: $(BIN)/temporal
	$(GO) test -run '^$$' -bench BenchmarkAPIKeysGet -benchtime 1x -count 1 ./tests/
