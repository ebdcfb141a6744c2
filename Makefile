# bmcstream — developer targets. The README's two commands (run, test) need
# only Go; these targets are conveniences around them.

GO        ?= go
GOGO_DIR   = $(shell $(GO) list -m -f '{{.Dir}}' github.com/gogo/protobuf)
PROTOC    ?= protoc
PROTO_SRC  = proto/bmcstream/v1/snapshot.proto

.PHONY: all build test test-short vet lint proto tools demo bench bench-50k bench-micro fuzz reliability release

all: build vet test

build:
	$(GO) build ./...

vet:
	$(GO) vet ./...

# go vet, staticcheck and errcheck at pinned versions, as CI runs them.
lint:
	scripts/lint.sh

# The README's test command.
test:
	$(GO) test -race -timeout 30m ./...

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

# The results table (benchmarks/README.md): issue 14's targets, one row each
# with met or not met, then the harnesses' details: the encode ceilings and the
# gateway end to end with their ratios (gatewayload at 10 000 BMCs, then two
# replicas; gatewayload at 50 000 BMCs), the poller's CPU and memory per BMC
# over Redfish and over IPMI (pollerload, twice) and reading → queryable
# latency through Prometheus (latency), in sequence, about 10-12 minutes.
# BENCH_RUNS=3 runs everything three times (medians and ranges). A flags
# variable set empty leaves its harness out (its target rows say "not run").
# BENCH_RECORD names a markdown file the table is appended to, with commit,
# machine and date (e.g. BENCH_RECORD=benchmarks/RESULTS.md). bench-50k runs
# the 50 000-BMC gateway run alone. bench-micro runs every Go benchmark once.
GATEWAYLOAD_FLAGS      ?= --bmcs=10000 --polls=3
GATEWAYLOAD_50K_FLAGS  ?= --bmcs=50000 --polls=3 --timeout=10m
POLLERLOAD_FLAGS       ?= --bmcs=2000 --protocol=redfish --interval=10s --warmup=20s --measure=60s
POLLERLOAD_IPMI_FLAGS  ?= --bmcs=2000 --protocol=ipmi --interval=10s --warmup=20s --measure=60s
LATENCY_FLAGS          ?= --bmcs=2000 --interval=15s --warmup=30s --measure=60s
BENCH_RUNS             ?= 1
BENCH_RECORD           ?=
bench:
	$(GO) run ./benchmarks/benchall --runs=$(BENCH_RUNS) --gatewayload-flags='$(GATEWAYLOAD_FLAGS)' \
		--gatewayload-50k-flags='$(GATEWAYLOAD_50K_FLAGS)' \
		--pollerload-flags='$(POLLERLOAD_FLAGS)' --pollerload-ipmi-flags='$(POLLERLOAD_IPMI_FLAGS)' \
		--latency-flags='$(LATENCY_FLAGS)' \
		$(if $(BENCH_RECORD),--record=$(BENCH_RECORD))

bench-50k:
	$(GO) run ./benchmarks/benchall --runs=$(BENCH_RUNS) --only=gatewayload-50k \
		--gatewayload-50k-flags='$(GATEWAYLOAD_50K_FLAGS)' $(if $(BENCH_RECORD),--record=$(BENCH_RECORD))

bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/... ./benchmarks/...

FUZZTIME ?= 1m
fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# The fault suite's long form (1000 BMCs, 10-minute outages; about 70
# minutes of scenarios, and a 30-minute soak against each supported
# nats-server). Rows of the results table go to RELIABILITY_REPORT; see
# docs/reliability.md. RELIABILITY_BMCS, _INTERVAL, _RUN and _OUTAGE
# override the form's figures.
RELIABILITY_REPORT ?= reliability-results.md
reliability:
	printf '| scenario | load | lost / duplicated / late | figures | commit |\n|---|---|---|---|---|\n' > $(RELIABILITY_REPORT)
	RELIABILITY=long RELIABILITY_REPORT=$(abspath $(RELIABILITY_REPORT)) \
		$(GO) test -count=1 -v -timeout 4h -run '^TestScenario' ./reliability/
	@echo "results: $(RELIABILITY_REPORT)"

# Static release binaries of the programs for each platform in
# RELEASE_PLATFORMS, as dist/<program>-<version>-<os>-<arch>, and
# dist/SHA256SUMS over them. VERSION defaults to `git describe`; the
# revision and branch are stamped too, since a build from a worktree or
# with GOFLAGS=-buildvcs=false carries no VCS information of its own.
VERSION           ?= $(shell git describe --tags --always --dirty)
RELEASE_REVISION  ?= $(shell git rev-parse HEAD)
RELEASE_BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD)
RELEASE_DATE      ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
RELEASE_MODIFIED  ?= $(if $(findstring -dirty,$(VERSION)),true,false)
RELEASE_PROGRAMS  ?= poller gateway bmcsim demo healthcheck
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64
VERSION_PKG        = github.com/bmcstream/bmcstream/internal/version
RELEASE_LDFLAGS    = -s -w -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(RELEASE_REVISION) \
	-X $(VERSION_PKG).Branch=$(RELEASE_BRANCH) -X $(VERSION_PKG).BuildDate=$(RELEASE_DATE) \
	-X $(VERSION_PKG).Modified=$(RELEASE_MODIFIED)
release:
	rm -rf dist && mkdir -p dist
	set -e; for platform in $(RELEASE_PLATFORMS); do \
		os=$${platform%/*}; arch=$${platform#*/}; \
		for prog in $(RELEASE_PROGRAMS); do \
			pkg=./cmd/$$prog; [ $$prog != healthcheck ] || pkg=./deploy/healthcheck; \
			echo "dist/$$prog-$(VERSION)-$$os-$$arch"; \
			CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(RELEASE_LDFLAGS)' \
				-o dist/$$prog-$(VERSION)-$$os-$$arch $$pkg; \
		done; \
	done
	cd dist && sha256sum * > SHA256SUMS
	./dist/poller-$(VERSION)-$(shell $(GO) env GOOS)-$(shell $(GO) env GOARCH) --version
