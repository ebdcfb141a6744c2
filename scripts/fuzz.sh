#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each (default 10s). CI runs it briefly;
# `make fuzz FUZZTIME=10m` runs it long. Add new targets to the list. An
# input that fails is written under the package's testdata/fuzz/<Target>/;
# commit it with the fix: plain `go test` then runs it as a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-10s}"
targets=(
  "FuzzEscapeRoundTrip ./pkg/bus"
  "FuzzUnescape ./pkg/bus"
  "FuzzDecodeNormalise ./pkg/pipeline"
  "FuzzDecodeLimits ./pkg/pipeline"
  "FuzzParse ./pkg/inventory"
  "FuzzParseCSV ./pkg/inventory"
  "FuzzParseCredentials ./pkg/inventory"
  "FuzzParseEntry ./pkg/inventory"
  "FuzzParseConfig ./pkg/poller"
  "FuzzParseConfig ./pkg/gateway"
  "FuzzParseRules ./pkg/pipeline"
  "FuzzDecodeThermal ./pkg/sources/redfish"
  "FuzzDecodePower ./pkg/sources/redfish"
  "FuzzDecodeSensors ./pkg/sources/redfish"
  "FuzzDecodeService ./pkg/sources/redfish"
  "FuzzMerge ./pkg/sources/redfish"
  "FuzzDecodeRecord ./pkg/sources/ipmi"
  "FuzzConversion ./pkg/sources/ipmi"
  "FuzzDecodeResponse ./pkg/sources/ipmi"
  "FuzzUnmarshalShared ./proto/bmcstream/v1"
  "FuzzLabels ./pkg/series"
  "FuzzEncode ./pkg/sinks/remotewrite"
)
# Go's fuzzing engine can report a bare "context deadline exceeded" when a
# worker is slow to answer at the end of the time on a loaded machine; no
# input failed then (none is written), so that case is run once more.
for t in "${targets[@]}"; do
  set -- $t
  for attempt in 1 2; do
    echo "fuzz $1 ($2) for $FUZZTIME"
    out="$(mktemp)"
    if go test -run '^$' -fuzz "^$1\$" -fuzztime "$FUZZTIME" "$2" 2>&1 | tee "$out"; test "${PIPESTATUS[0]}" -eq 0; then
      rm -f "$out"
      break
    fi
    if [ "$attempt" = 1 ] && grep -q "context deadline exceeded" "$out" && ! grep -q "Failing input written" "$out"; then
      echo "fuzz $1: the engine timed out with no failing input; once more"
      rm -f "$out"
      continue
    fi
    rm -f "$out"
    exit 1
  done
done
