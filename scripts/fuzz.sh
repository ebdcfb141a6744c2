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
  "FuzzDecodeRecord ./pkg/sources/ipmi"
  "FuzzConversion ./pkg/sources/ipmi"
  "FuzzDecodeResponse ./pkg/sources/ipmi"
)
for t in "${targets[@]}"; do
  set -- $t
  echo "fuzz $1 ($2) for $FUZZTIME"
  go test -run '^$' -fuzz "^$1\$" -fuzztime "$FUZZTIME" "$2"
done
