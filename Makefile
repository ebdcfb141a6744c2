# bmcstream — developer targets. The README's two commands (run, test) need
# only Go; these targets are conveniences around them.

GO        ?= go
GOGO_DIR   = $(shell $(GO) list -m -f '{{.Dir}}' github.com/gogo/protobuf)
PROTOC    ?= protoc
PROTO_SRC  = proto/bmcstream/v1/snapshot.proto

.PHONY: all build test test-short vet proto tools demo bench fuzz reliability

all: build vet test

build:
	$(GO) build ./...

vet:
	$(GO) vet ./...

# The README's test command.
test:
	$(GO) test -race ./...

test-short:
	$(GO) test -short ./...

# Install the gogo protoc plugin at the version go.mod pins.
tools:
	$(GO) install github.com/gogo/protobuf/protoc-gen-gogofaster@v1.3.2

# Regenerate the wire schema's Go code. Never edit *.pb.go by hand:
# proto/generate_test.go fails when they differ from this target's output.
proto:
	$(PROTOC) -I proto -I $(GOGO_DIR) -I $(GOGO_DIR)/protobuf \
		--gogofaster_out=paths=source_relative:proto $(PROTO_SRC)

# The README's run command.
demo:
	$(GO) run ./cmd/demo

# Micro-benchmarks, the encode ceiling, then the gateway end to end against
# the ceiling measured in the same run (benchmarks/README.md). BENCH_RECORD
# names a markdown file the end-to-end table is appended to, with commit,
# machine and date (e.g. BENCH_RECORD=benchmarks/RESULTS.md).
GATEWAYLOAD_FLAGS ?= --bmcs=10000 --polls=3
BENCH_RECORD      ?=
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/... ./benchmarks/...
	$(GO) run ./benchmarks/gatewayload $(GATEWAYLOAD_FLAGS) $(if $(BENCH_RECORD),--record=$(BENCH_RECORD))

FUZZTIME ?= 1m
fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# The fault suite's long form (1000 BMCs, 10-minute outages; about 70
# minutes of scenarios). Rows of the results table go to RELIABILITY_REPORT; see
# docs/reliability.md. RELIABILITY_BMCS, _INTERVAL, _RUN and _OUTAGE
# override the form's figures.
RELIABILITY_REPORT ?= reliability-results.md
reliability:
	printf '| scenario | load | lost / duplicated / late | figures | commit |\n|---|---|---|---|---|\n' > $(RELIABILITY_REPORT)
	RELIABILITY=long RELIABILITY_REPORT=$(abspath $(RELIABILITY_REPORT)) \
		$(GO) test -count=1 -v -timeout 4h -run '^TestScenario' ./reliability/
	@echo "results: $(RELIABILITY_REPORT)"
