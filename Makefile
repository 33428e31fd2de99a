# go-aleph — see README.md. `make run` starts a local network, `make test` runs every test.
GO       ?= go
FUZZTIME ?= 10s
BIN      := bin

.PHONY: all build run test unit fuzz bench lint tidy clean

all: lint test

build:
	$(GO) build -o $(BIN)/ ./cmd/...

run:
	$(GO) run ./cmd/alephd dev

# Every test: unit and integration tests, then each fuzz target for $(FUZZTIME).
test: unit fuzz

unit:
	$(GO) test -count=1 ./...

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
