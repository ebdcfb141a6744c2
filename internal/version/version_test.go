package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// fakeBuild is the build information of a binary built from a checkout
// at version: its module version and the VCS stamp.
func fakeBuild(version string, settings ...debug.BuildSetting) *debug.BuildInfo {
	return &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/bmcstream/bmcstream", Version: version},
		Settings:  settings,
	}
}

var vcs = []debug.BuildSetting{
	{Key: "GOOS", Value: "linux"},
	{Key: "GOARCH", Value: "arm64"},
	{Key: "vcs", Value: "git"},
	{Key: "vcs.revision", Value: "0c5f3d2a9b1e"},
	{Key: "vcs.time", Value: "2026-12-07T22:10:00Z"},
	{Key: "vcs.modified", Value: "true"},
}

func TestFromBuildInfo(t *testing.T) {
	for _, tc := range []struct {
		name      string
		bi        *debug.BuildInfo
		overrides Info
		want      Info
	}{{
		name: "go install at a tag",
		bi:   fakeBuild("v1.2.3", debug.BuildSetting{Key: "GOOS", Value: "linux"}, debug.BuildSetting{Key: "GOARCH", Value: "amd64"}),
		want: Info{Version: "v1.2.3", GoVersion: "go1.26.8", GoOS: "linux", GoArch: "amd64"},
	}, {
		name: "built from a modified checkout",
		bi:   fakeBuild("v0.0.0-20261207221000-0c5f3d2a9b1e+dirty", vcs...),
		want: Info{Version: "v0.0.0-20261207221000-0c5f3d2a9b1e+dirty", Revision: "0c5f3d2a9b1e", Date: "2026-12-07T22:10:00Z",
			Modified: "true", GoVersion: "go1.26.8", GoOS: "linux", GoArch: "arm64"},
	}, {
		name: "no module version",
		bi:   fakeBuild("(devel)", vcs...),
		want: Info{Version: Devel, Revision: "0c5f3d2a9b1e", Date: "2026-12-07T22:10:00Z", Modified: "true",
			GoVersion: "go1.26.8", GoOS: "linux", GoArch: "arm64"},
	}, {
		name:      "release build: the linker's values win",
		bi:        fakeBuild("(devel)", vcs...),
		overrides: Info{Version: "v1.3.0-rc.1", Branch: "main", Date: "2026-12-08T00:00:00Z"},
		want: Info{Version: "v1.3.0-rc.1", Revision: "0c5f3d2a9b1e", Branch: "main", Date: "2026-12-08T00:00:00Z", Modified: "true",
			GoVersion: "go1.26.8", GoOS: "linux", GoArch: "arm64"},
	}, {
		name: "no build information",
		want: Info{Version: Devel, GoVersion: runtime.Version(), GoOS: runtime.GOOS, GoArch: runtime.GOARCH},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, FromBuildInfo(tc.bi, tc.overrides))
		})
	}
}

func TestPrint(t *testing.T) {
	i := FromBuildInfo(fakeBuild("v1.2.3", vcs...), Info{})
	require.Equal(t, `poller, version v1.2.3 (revision: 0c5f3d2a9b1e, modified: true)
  build date:  2026-12-07T22:10:00Z
  go version:  go1.26.8
  platform:    linux/arm64`, i.Print("poller"))

	i = FromBuildInfo(nil, Info{Branch: "main"})
	got := i.Print("gateway")
	require.True(t, strings.HasPrefix(got, "gateway, version devel (branch: main, revision: unknown, modified: unknown)\n  build date:  unknown\n"), got)
	require.Contains(t, got, "\n  platform:    "+runtime.GOOS+"/"+runtime.GOARCH)
}

func TestCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(FromBuildInfo(fakeBuild("v1.2.3", vcs...), Info{Branch: "main"})))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP bmcstream_build_info A metric with a constant '1' value labeled by version, revision, branch, goversion, goos and goarch of the bmcstream build.
# TYPE bmcstream_build_info gauge
bmcstream_build_info{branch="main",goarch="arm64",goos="linux",goversion="go1.26.8",revision="0c5f3d2a9b1e",version="v1.2.3"} 1
`)))
}

// TestGet: the running test binary has build information; Get reads it
// and the linker's overrides.
func TestGet(t *testing.T) {
	i := Get()
	require.NotEmpty(t, i.Version)
	require.Equal(t, runtime.GOOS, i.GoOS)
	require.Equal(t, runtime.GOARCH, i.GoArch)
	require.Equal(t, runtime.Version(), i.GoVersion)
}
