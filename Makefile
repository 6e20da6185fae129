# The ecosystem's everyday commands. `make test` is what CI runs.
GO      ?= go
BINARIES := $(notdir $(wildcard cmd/*))

.PHONY: build test test-short test-kafka test-interop lint run fmt bench bench-kafka kafka

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

# The same suite on Apache Kafka itself (internal/apachekafka: the broker from Maven Central,
# test/kafka/pom.xml, run as a JVM; needs Java 17+ and Maven, and downloads nothing after the
# first run). One broker serves every package's integration tests and test/e2e; then the
# reliability suite's short mode starts brokers of its own, to SIGKILL them, including the
# three-broker cluster scenario. KAFKA_VERSION picks another 4.x release.
test-kafka: lint
	KAFKA_BACKEND=apache $(GO) run ./test/kafka/withkafka -- $(GO) tool gotestsum --format standard-quiet -- -race -count=1 -timeout 20m ./...
	KAFKA_BACKEND=apache ORDERSYS_RELIABILITY=short $(GO) tool gotestsum --format standard-verbose -- -race -count=1 -timeout 20m ./test/reliability/
	# The end-to-end suite again over each secured listener (SASL_SSL with SCRAM-SHA-512, and
	# mutual TLS), every client of every service configured by the environment (issue 17).
	KAFKA_BACKEND=apache $(GO) run ./test/kafka/withkafka --listener sasl-ssl -- $(GO) test -race -count=1 -timeout 10m ./test/e2e/
	KAFKA_BACKEND=apache $(GO) run ./test/kafka/withkafka --listener mtls -- $(GO) test -race -count=1 -timeout 10m ./test/e2e/

# Interoperability with clients and tools nobody here wrote (test/interop, docs/interop.md), on
# Apache Kafka like test-kafka: Kafka's Java client and Apache Avro (Maven, test/interop/java),
# schemathesis against the live REST API (a virtual environment pinned by
# test/interop/requirements.txt, made on first use) and kcat (Debian's package).
INTEROP_VENV ?= test/interop/.venv
test-interop: $(INTEROP_VENV)/.installed
	@command -v kcat >/dev/null || { echo "kcat is missing: apt-get install kcat"; exit 1; }
	ORDERSYS_INTEROP=1 ORDERSYS_INTEROP_VENV=$(abspath $(INTEROP_VENV)) KAFKA_BACKEND=apache $(GO) run ./test/kafka/withkafka -- $(GO) test -count=1 -v -timeout 15m ./test/interop/

$(INTEROP_VENV)/.installed: test/interop/requirements.txt
	python3 -m venv $(INTEROP_VENV)
	$(INTEROP_VENV)/bin/pip install -q -r test/interop/requirements.txt
	touch $@

# A local Apache Kafka for running the services against (127.0.0.1:9092, data in data/kafka,
# kept between runs); Ctrl-C stops it.
kafka:
	$(GO) run ./test/kafka/withkafka --dir data/kafka --port 9092 --controller-port 9093

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

# The same phases with the ecosystem on Apache Kafka, started by the benchmark from Maven.
bench-kafka:
	$(GO) build -o bin/bench ./cmd/bench
	./bin/bench --broker apache --out bench-results-kafka.json $(BENCH_FLAGS)
