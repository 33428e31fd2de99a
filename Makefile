# go-aleph — see README.md. `make run` starts a local network, `make test` runs every test.
GO       ?= go
FUZZTIME ?= 10s
BIN      := bin

.PHONY: all build run test unit fuzz bench lint tidy clean conformance conformance-deps

all: lint test

# Static binaries: aleph-init runs inside program sandboxes with no libc.
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/...

run: build
	$(BIN)/alephd dev

# Every test: unit, integration and end-to-end tests (the official TypeScript SDK
# against a real alephd needs its npm packages, installed by conformance-deps; the
# --ipfs-api tests need a kubo binary, built once by scripts/kubo.sh), then each
# fuzz target for $(FUZZTIME).
test: conformance-deps unit fuzz

unit:
	ALEPH_TEST_KUBO="$${ALEPH_TEST_KUBO:-$$(./scripts/kubo.sh)}" $(GO) test -count=1 ./...

conformance-deps:
	./scripts/conformance-deps.sh

conformance: conformance-deps
	$(GO) test -count=1 -v ./conformance

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz-smoke.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

tidy:
	$(GO) mod tidy -e  # -e: a test-only dependency of modernc.org/sqlite (google/pprof) is not served by the proxy

clean:
	rm -rf $(BIN)
