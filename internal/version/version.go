// Package version says which build of bmcstream is running: in --version,
// in the start-up log line and as the bmcstream_build_info metric.
//
// The figures come from the build itself (runtime/debug.ReadBuildInfo):
// the module version when the program was built with
// `go install github.com/bmcstream/bmcstream/cmd/poller@v1.2.3` (or, since
// Go 1.24, the version go build derives from the checkout's tags and
// commit), and the commit, commit time and whether the tree was modified
// when it was built from a git checkout. A release build may override
// them with the linker:
//
//	go build -ldflags "-X github.com/bmcstream/bmcstream/internal/version.Version=v1.2.3" ./cmd/poller
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// These are set only with -ldflags "-X …", which can set nothing but
// package-level string variables; empty means "from the build
// information". Nothing in the program assigns them.
var (
	// Version overrides the release, e.g. v1.2.3 or `git describe` output.
	Version string
	// Revision overrides the commit the build was made from.
	Revision string
	// Branch names the branch the build was made from; the Go toolchain
	// does not record it, so it is known only when set here.
	Branch string
	// BuildDate overrides the build's date (RFC 3339); otherwise the
	// commit's time stands in for it.
	BuildDate string
	// Modified overrides whether the checkout had uncommitted changes
	// ("true" or "false").
	Modified string
)

// Devel is the version of a build that carries none: `go run`, or a
// build outside a module or checkout.
const Devel = "devel"

// Info describes one build.
type Info struct {
	// Version is the release (v1.2.3), a pseudo-version the Go toolchain
	// derived from the checkout, or Devel.
	Version string
	// Revision is the commit, "" when unknown.
	Revision string
	// Branch is the branch, "" when unknown.
	Branch string
	// Date is the build's date or, failing that, the commit's time; ""
	// when unknown.
	Date string
	// Modified is "true" when the checkout had uncommitted changes,
	// "false" when it had none, "" when unknown.
	Modified string
	// GoVersion, GoOS and GoArch are the toolchain and the platform built
	// for.
	GoVersion, GoOS, GoArch string
}

// Get describes the running program's build: the linker's overrides
// where set, its build information otherwise.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return FromBuildInfo(bi, Info{Version: Version, Revision: Revision, Branch: Branch, Date: BuildDate, Modified: Modified})
}

// FromBuildInfo derives an Info from bi (nil when the program has none)
// and the fields of overrides that are set, which win.
func FromBuildInfo(bi *debug.BuildInfo, overrides Info) Info {
	info := Info{Version: Devel, GoVersion: runtime.Version(), GoOS: runtime.GOOS, GoArch: runtime.GOARCH}
	if bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			info.Version = v
		}
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.time":
				info.Date = s.Value
			case "vcs.modified":
				info.Modified = s.Value
			case "GOOS":
				info.GoOS = s.Value
			case "GOARCH":
				info.GoArch = s.Value
			}
		}
	}
	for _, o := range []struct {
		dst *string
		v   string
	}{
		{&info.Version, overrides.Version},
		{&info.Revision, overrides.Revision},
		{&info.Branch, overrides.Branch},
		{&info.Date, overrides.Date},
		{&info.Modified, overrides.Modified},
	} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	return info
}

// Print is the text of a program's --version, in the layout of
// Prometheus' programs:
//
//	poller, version v1.2.3 (branch: main, revision: 0c5f…, modified: false)
//	  build date:  2026-12-08T01:00:00Z
//	  go version:  go1.26.8
//	  platform:    linux/amd64
func (i Info) Print(program string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, version %s (", program, i.Version)
	if i.Branch != "" {
		fmt.Fprintf(&b, "branch: %s, ", i.Branch)
	}
	fmt.Fprintf(&b, "revision: %s, modified: %s)\n", orUnknown(i.Revision), orUnknown(i.Modified))
	fmt.Fprintf(&b, "  build date:  %s\n", orUnknown(i.Date))
	fmt.Fprintf(&b, "  go version:  %s\n", i.GoVersion)
	fmt.Fprintf(&b, "  platform:    %s/%s", i.GoOS, i.GoArch)
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
