# The ecosystem's everyday commands. `make test` is what CI runs.
GO      ?= go
BINARIES := $(notdir $(wildcard cmd/*))

.PHONY: build test test-short lint run fmt bench

build:
	$(GO) build -o bin/ ./cmd/...

lint:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi

# The whole suite, with the race detector, on the embedded broker unless KAFKA_BROKERS or
# KAFKA_BACKEND say otherwise; then the fault-injection suite's short mode on its own, so its
# crash and outage timings do not compete with the other packages for the CPU.
test: lint
	$(GO) test -race -timeout 14m ./...
	ORDERSYS_RELIABILITY=short $(GO) test -race -count=1 -timeout 10m ./test/reliability/

test-short:
	$(GO) test -short ./...

run:
	$(GO) run ./cmd/ecosystem

fmt:
	gofmt -w $$(git ls-files '*.go')

# The benchmark (internal/bench, results in docs/benchmarks.md): one-in-flight latency against
# the broker's own round trip, the goka-defaults baseline, a throughput sweep and reads, on a
# fresh embedded-broker ecosystem in a child process. Prints the tables and writes
# bench-results.json; about three minutes. BENCH_FLAGS passes options (see bin/bench --help).
bench:
	$(GO) build -o bin/bench ./cmd/bench
	./bin/bench $(BENCH_FLAGS)
