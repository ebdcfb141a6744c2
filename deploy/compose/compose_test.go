package compose_test

import (
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/bmcstream/bmcstream/deploy/compose"
)

// The compose stack's services, by role.
var (
	coreServices = []string{"nats", "bmcsim", "poller-1", "poller-2", "gateway", "prometheus", "alertmanager", "grafana"}
	// Services of each optional profile.
	profileServices = map[string][]string{
		"victoriametrics": {"victoriametrics", "gateway-victoriametrics"},
		"tenant":          {"thanos-receive", "thanos-query", "gateway-tenant"},
	}
	// bmcstream's own services and the program each runs.
	programOf = map[string]string{
		"bmcsim": "bmcsim", "poller-1": "poller", "poller-2": "poller", "gateway": "gateway",
		"gateway-victoriametrics": "gateway", "gateway-tenant": "gateway",
	}
)

func loadProject(t *testing.T) *compose.Project {
	t.Helper()
	p, err := compose.LoadProject(nil)
	require.NoError(t, err)
	return p
}

// TestComposeServices checks the topology: every service the stack
// promises, each with an image, a restart policy and a health check, the
// optional ones in their profiles.
func TestComposeServices(t *testing.T) {
	p := loadProject(t)
	require.Equal(t, "bmcstream", p.Name)
	want := slices.Clone(coreServices)
	for _, svcs := range profileServices {
		want = append(want, svcs...)
	}
	got := make([]string, 0, len(p.Services))
	for name := range p.Services {
		got = append(got, name)
	}
	sort.Strings(want)
	sort.Strings(got)
	require.Equal(t, want, got)

	for _, name := range coreServices {
		require.Empty(t, p.Services[name].Profiles, "%s runs without a profile", name)
	}
	for profile, svcs := range profileServices {
		for _, name := range svcs {
			require.Equal(t, []string{profile}, p.Services[name].Profiles, name)
		}
	}
	for name, s := range p.Services {
		t.Run(name, func(t *testing.T) {
			require.NotEmpty(t, s.Image, "image")
			require.Contains(t, []string{"always", "unless-stopped", "on-failure"}, s.Restart, "restart policy")
			hc := s.Healthcheck
			require.NotNil(t, hc, "health check")
			require.NotEmpty(t, hc.Test)
			require.Equal(t, "CMD", hc.Test[0], "health check in exec form: bmcstream's images have no shell")
			for _, d := range []string{hc.Interval, hc.Timeout, hc.StartPeriod} {
				v, err := time.ParseDuration(d)
				require.NoError(t, err)
				require.Positive(t, v)
			}
			require.Positive(t, hc.Retries)
			for _, port := range s.Ports {
				require.True(t, strings.HasPrefix(port, "127.0.0.1:"), "port %s is published on loopback only", port)
			}
		})
	}
}

// TestComposeDependencies checks depends_on: it names services that exist,
// waits for health where the dependency has a health check, and never makes
// a service without a profile wait for one that needs a profile.
func TestComposeDependencies(t *testing.T) {
	p := loadProject(t)
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			ds, ok := p.Services[dep]
			require.True(t, ok, "%s depends on unknown service %s", name, dep)
			require.Equal(t, "service_healthy", d.Condition, "%s waits for %s to be healthy", name, dep)
			require.NotNil(t, ds.Healthcheck)
			if len(s.Profiles) == 0 {
				require.Empty(t, ds.Profiles, "%s (no profile) depends on %s, which needs a profile", name, dep)
			}
		}
	}
	// The pollers and gateways need the fleet's files and NATS.
	for name, prog := range programOf {
		if prog == "bmcsim" {
			continue
		}
		deps := p.Services[name].DependsOn
		require.Contains(t, deps, "nats", name)
		require.Contains(t, deps, "bmcsim", name)
	}
}

// TestComposeMounts checks every mount: bind-mounted configuration exists
// beside the compose file and is mounted read-only; named volumes are
// declared and used; only bmcsim writes the fleet's files.
func TestComposeMounts(t *testing.T) {
	p := loadProject(t)
	used := map[string]bool{}
	for name, s := range p.Services {
		mounts, err := s.Mounts()
		require.NoError(t, err, name)
		for _, m := range mounts {
			if m.Bind {
				require.True(t, strings.HasPrefix(m.Source, "./"), "%s: bind mount %s is relative to the compose file", name, m.Source)
				_, err := os.Stat(filepath.FromSlash(m.Source))
				require.NoError(t, err, "%s: bind-mounted %s must exist", name, m.Source)
				require.True(t, m.ReadOnly, "%s: configuration %s is mounted read-only", name, m.Source)
				continue
			}
			_, declared := p.Volumes[m.Source]
			require.True(t, declared, "%s: volume %s is declared", name, m.Source)
			used[m.Source] = true
			if m.Source == "sim" {
				require.Equal(t, name != "bmcsim", m.ReadOnly, "%s: only bmcsim writes the fleet's files", name)
				require.Equal(t, "/etc/bmcstream/sim", m.Target, "%s: sim/ beside the configuration", name)
			}
		}
	}
	for v := range p.Volumes {
		require.True(t, used[v], "volume %s is used", v)
	}
	require.True(t, used["nats-data"], "JetStream keeps its store on a volume")
}

// TestComposeBmcstreamImage checks the services running bmcstream's own
// programs: one image built from the Dockerfile at the repository root,
// hardened, running the program its command names with a health check on
// the port it listens on.
func TestComposeBmcstreamImage(t *testing.T) {
	p := loadProject(t)
	image := ""
	for name, prog := range programOf {
		t.Run(name, func(t *testing.T) {
			s := p.Services[name]
			require.NotNil(t, s.Build)
			ctx := filepath.FromSlash(s.Build.Context)
			for _, f := range []string{s.Build.Dockerfile, "go.mod", ".dockerignore"} {
				_, err := os.Stat(filepath.Join(ctx, f))
				require.NoError(t, err, "build context %s holds %s", ctx, f)
			}
			if image == "" {
				image = s.Image
			}
			require.Equal(t, image, s.Image, "one image for every program")
			require.True(t, s.ReadOnly, "read-only root file system")
			require.Equal(t, []string{"ALL"}, s.CapDrop)
			require.Contains(t, s.SecurityOpt, "no-new-privileges:true")
			require.Equal(t, "/usr/local/bin/"+prog, s.Command[0])

			listen := flagValue(s.Command, "--web.listen-address")
			if prog == "bmcsim" {
				listen = flagValue(s.Command, "--admin.listen-address")
			}
			require.NotEmpty(t, listen, "the command sets the listen address")
			_, port, err := net.SplitHostPort(listen)
			require.NoError(t, err)
			test := s.Healthcheck.Test
			require.Equal(t, "/usr/local/bin/healthcheck", test[1])
			u, err := url.Parse(test[2])
			require.NoError(t, err)
			require.Equal(t, "127.0.0.1:"+port, u.Host, "the health check asks the port the program listens on")
		})
	}
}

// TestDockerfile checks the Dockerfile builds the programs the compose file
// runs: static (CGO_ENABLED=0), trimmed, into a distroless image as a
// non-root user. No Docker engine is needed: the Go packages it builds are
// listed with go list, and must be commands.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	df := string(b)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "FROM gcr.io/distroless/static", "USER 65532", "--chown=65532:65532 /out/etc/bmcstream/"} {
		require.Contains(t, df, want)
	}
	build := regexp.MustCompile(`-o /out/usr/local/bin/ ((?:\./[a-z/]+ ?)+)`).FindStringSubmatch(df)
	require.NotNil(t, build, "the build command")
	pkgs := strings.Fields(build[1])
	list := exec.Command("go", append([]string{"list", "-f", "{{.Name}} {{.ImportPath}}"}, pkgs...)...)
	list.Dir = "../.." // the build context
	out, err := list.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		require.Equal(t, "main", f[0], "%s is a command", f[1])
		names = append(names, filepath.Base(f[1]))
	}
	for _, prog := range []string{"poller", "gateway", "bmcsim", "healthcheck"} {
		require.Contains(t, names, prog)
	}
}

// TestComposeNetwork checks the simulated fleet's address: bmcsim serves
// every BMC on its fixed address, which must be the one the network gives
// it, inside the network's subnet, whatever the environment overrides.
func TestComposeNetwork(t *testing.T) {
	for _, env := range []map[string]string{
		nil,
		{"BMCSTREAM_SUBNET": "192.168.77.0/24", "BMCSTREAM_BMCSIM_ADDRESS": "192.168.77.5"},
	} {
		p, err := compose.LoadProject(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		require.NoError(t, err)
		s := p.Services["bmcsim"]
		addr := s.Networks["default"].IPv4Address
		require.Equal(t, addr, flagValue(s.Command, "--first-address"))
		require.Equal(t, "port", flagValue(s.Command, "--addressing"), "containers cannot reach bmcsim's loopback addresses")
		net := p.Networks["default"]
		require.NotNil(t, net.IPAM)
		prefix, err := netip.ParsePrefix(net.IPAM.Config[0].Subnet)
		require.NoError(t, err)
		require.True(t, prefix.Contains(netip.MustParseAddr(addr)), "%s in %s", addr, prefix)
		if env != nil {
			require.Equal(t, env["BMCSTREAM_BMCSIM_ADDRESS"], addr)
		}
	}
}

// TestComposeAddresses checks that the addresses the configuration files
// use name services of the stack on the ports those services listen on.
func TestComposeAddresses(t *testing.T) {
	p := loadProject(t)
	listens := map[string]string{ // service → port it serves on
		"nats": "4222", "prometheus": "9090", "alertmanager": "9093",
		"victoriametrics": "8428", "thanos-receive": "19291", "thanos-query": "10904",
	}
	for name, prog := range programOf {
		if prog != "bmcsim" {
			_, port, err := net.SplitHostPort(flagValue(p.Services[name].Command, "--web.listen-address"))
			require.NoError(t, err)
			listens[name] = port
		}
	}
	hostPort := regexp.MustCompile(`(?:nats|https?)://([a-z0-9-]+):(\d+)|"([a-z0-9-]+):(\d+)"`)
	for _, f := range []string{
		"bmcstream/poller.yml", "bmcstream/gateway.yml", "bmcstream/gateway-victoriametrics.yml", "bmcstream/gateway-tenant.yml",
		"prometheus/prometheus.yml", "grafana/provisioning/datasources/datasources.yml",
	} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		ms := hostPort.FindAllStringSubmatch(string(b), -1)
		require.NotEmpty(t, ms, f)
		for _, m := range ms {
			host, port := m[1]+m[3], m[2]+m[4]
			if host == "localhost" {
				continue // Prometheus scraping itself
			}
			want, ok := listens[host]
			require.True(t, ok, "%s: %s:%s is no service of the stack", f, host, port)
			require.Equal(t, want, port, "%s: %s listens on %s", f, host, want)
		}
	}
}

// TestGrafanaProvisioning checks that Grafana finds its datasources and
// dashboards where the compose file mounts them.
func TestGrafanaProvisioning(t *testing.T) {
	p := loadProject(t)
	g := p.Services["grafana"]

	var providers struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/dashboards.yml", &providers)
	require.Len(t, providers.Providers, 1)
	dir, err := g.ConfigPath(providers.Providers[0].Options.Path)
	require.NoError(t, err)
	require.Equal(t, compose.DashboardDir, dir, "the provider reads the mounted dashboards")
	home, err := g.ConfigPath(g.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
	require.NoError(t, err)
	_, err = os.Stat(home)
	require.NoError(t, err, "home dashboard")
	prov, err := g.ConfigPath("/etc/grafana/provisioning/datasources/datasources.yml")
	require.NoError(t, err)
	require.Equal(t, "grafana/provisioning/datasources/datasources.yml", prov)

	var ds struct {
		Datasources []struct {
			Name      string `yaml:"name"`
			UID       string `yaml:"uid"`
			Type      string `yaml:"type"`
			URL       string `yaml:"url"`
			IsDefault bool   `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	readYAML(t, prov, &ds)
	uids := map[string]string{}
	for _, d := range ds.Datasources {
		uids[d.UID] = d.Type
	}
	require.Equal(t, "prometheus", uids["prometheus"])

	dashboards, err := compose.Dashboards()
	require.NoError(t, err)
	for _, d := range dashboards {
		for _, v := range d.Templating.List {
			if v.Type == "datasource" {
				var q string
				require.NoError(t, yaml.Unmarshal(v.Query, &q))
				require.Equal(t, "prometheus", q, "%s: datasource variable of type prometheus", d.File)
			}
		}
		for _, pn := range d.AllPanels() {
			refs := []*compose.Datasource{pn.Datasource}
			for _, tg := range pn.Targets {
				refs = append(refs, tg.Datasource)
			}
			for _, r := range refs {
				if r == nil || pn.Type == "row" {
					continue
				}
				if r.UID != "${datasource}" {
					_, ok := uids[r.UID]
					require.True(t, ok, "%s / %s: datasource uid %s is provisioned", d.File, pn.Title, r.UID)
				}
			}
		}
	}
}

// TestRender checks the address substitution the demo relies on.
func TestRender(t *testing.T) {
	b, err := compose.Render("bmcstream/gateway.yml", map[string]string{
		"nats://nats:4222":                    "nats://127.0.0.1:4333",
		"http://prometheus:9090/api/v1/write": "http://127.0.0.1:9999/api/v1/write",
	})
	require.NoError(t, err)
	require.Contains(t, string(b), "url: nats://127.0.0.1:4333")
	require.Contains(t, string(b), "url: http://127.0.0.1:9999/api/v1/write")
	require.NotContains(t, string(b), "nats:4222")

	_, err = compose.Render("bmcstream/poller.yml", map[string]string{"nats://elsewhere:4222": "x"})
	require.ErrorContains(t, err, `"nats://elsewhere:4222" does not occur`)
}

func TestInterpolate(t *testing.T) {
	env := map[string]string{"SET": "v", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct{ in, want string }{
		{"a ${SET} b", "a v b"},
		{"$SET", "v"},
		{"${UNSET:-d}", "d"},
		{"${EMPTY:-d}", "d"},
		{"${EMPTY-d}", ""},
		{"${UNSET-d}", "d"},
		{"${UNSET}", ""},
		{"$$SET", "$SET"},
		{"${SET:-10.0.0.1/24}", "v"},
	}
	for _, tc := range tests {
		got, err := compose.Interpolate(tc.in, lookup)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	_, err := compose.Interpolate("${BROKEN", lookup)
	require.Error(t, err)
}

func TestParseProjectIsStrict(t *testing.T) {
	_, err := compose.ParseProject([]byte("services:\n  a:\n    image: x\n    healtcheck: {}\n"), nil)
	require.ErrorContains(t, err, "healtcheck")
	_, err = compose.ParseProject([]byte("servics: {}\n"), nil)
	require.ErrorContains(t, err, "servics")
	p, err := compose.ParseProject([]byte("x-a: &a {image: x}\nservices:\n  a:\n    <<: *a\n    depends_on: [b]\n  b: {image: y}\n"), nil)
	require.NoError(t, err)
	require.Equal(t, "x", p.Services["a"].Image)
	require.Equal(t, compose.Dependencies{"b": {Condition: "service_started"}}, p.Services["a"].DependsOn)
}

// flagValue returns the value of --name=value in args, or "".
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, v), path)
}
