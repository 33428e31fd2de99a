# go-aleph — see README.md. `make run` starts a local network, `make test` runs every test.
GO       ?= go
FUZZTIME ?= 10s
BIN      := bin

.PHONY: all build run test unit fuzz bench lint tidy clean conformance conformance-deps vm runtime-python

all: lint test

# Static binaries: aleph-init runs inside program sandboxes with no libc.
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/...

run: build
	$(BIN)/alephd dev

# MicroVMs (as root, on Debian): qemu and the guest kernel, then `alephd crn --executor qemu`
# or `alephd dev --executor qemu`.
vm: build
	@command -v qemu-system-x86_64 >/dev/null || apt-get install -y --no-install-recommends qemu-system-x86
	$(BIN)/alephd runtime kernel

# The Python runtime (Debian bookworm via debootstrap; reproducible, cached in /var/cache/go-aleph).
runtime-python: build
	@command -v debootstrap >/dev/null || apt-get install -y --no-install-recommends debootstrap
	$(BIN)/alephd runtime build --python --out $(BIN)/runtime-python.squashfs

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
