#!/usr/bin/env bash
# The checks CI runs beyond the tests: go vet, staticcheck, the rule that
# no error is ignored silently, and no fixed sleeps in tests. Run from the
# repository root:
#
#   scripts/lint.sh
#
# errcheck -blank reports every ignored error (a call whose error is
# dropped, or assigned to _). Each must be handled, counted in a metric,
# or carry a comment on its line or the line above saying why it is
# ignored. The writes whose failure means nothing are listed, with the
# reason, in scripts/errcheck-excludes.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned, so a new release's checks arrive in a change of their own.
STATICCHECK_VERSION=v0.8.2
ERRCHECK_VERSION=v1.10.0

go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
go install "github.com/kisielk/errcheck@${ERRCHECK_VERSION}"
PATH="$(go env GOPATH)/bin:$PATH"

status=0

echo "== go vet"
go vet ./... || status=1

echo "== staticcheck ${STATICCHECK_VERSION}"
staticcheck ./... || status=1

echo "== errcheck ${ERRCHECK_VERSION}: ignored errors without a reason"
# errcheck exits 1 when it reports anything; the reports are judged below.
report=$(errcheck -blank -ignoretests -exclude scripts/errcheck-excludes.txt ./... 2>&1) || true
uncommented=0
while IFS= read -r line; do
  [ -z "$line" ] && continue
  file=${line%%:*}
  rest=${line#*:}
  n=${rest%%:*}
  case "$n" in
    '' | *[!0-9]*) # not a finding: errcheck could not load a package
      echo "$line"
      uncommented=$((uncommented + 1))
      continue
      ;;
  esac
  # A reason is a // comment on the line itself or alone on the line above.
  if sed -n "${n}p" "$file" | grep -Eq '(^|[[:space:]])//'; then
    continue
  fi
  if [ "$n" -gt 1 ] && sed -n "$((n - 1))p" "$file" | grep -q '^[[:space:]]*//'; then
    continue
  fi
  echo "$line"
  uncommented=$((uncommented + 1))
done <<<"$report"
if [ "$uncommented" -gt 0 ]; then
  echo "errcheck: $uncommented ignored error(s) neither handled nor commented with the reason"
  status=1
fi

echo "== time.Sleep in tests outside a synctest bubble"
# A test waits on a condition (internal/testbed: Eventually, Until, Never)
# or, where time is the subject, sleeps in fake time inside
# synctest.Test. A sleep counts as inside a bubble when a synctest.Test(
# call opens earlier in the same top-level function.
sleeps=$(git ls-files '*_test.go' | xargs awk '
  FNR == 1 { bubble = 0 }
  /^func / { bubble = 0 }
  /synctest\.Test\(/ { bubble = 1 }
  /time\.Sleep\(/ && !bubble { print FILENAME ":" FNR ": " $0 }
')
if [ -n "$sleeps" ]; then
  echo "$sleeps"
  echo "sleeps in tests: wait on a condition (internal/testbed) or use testing/synctest"
  status=1
fi

exit $status
