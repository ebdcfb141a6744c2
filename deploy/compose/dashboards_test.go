package compose_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/bmcstream/bmcstream/deploy/compose"
)

// builtinVars are Grafana's own variables, with the values the checks
// expand them to.
var builtinVars = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__range":         "1h",
}

// expandAll expands a dashboard query's variables: Grafana's built-ins, and
// the dashboard's own as their "All" value would (.*) or, for a single
// value, a made-up BMC id (the expression's shape is what is checked).
func expandAll(t *testing.T, q compose.Query) string {
	t.Helper()
	vars := map[string]string{}
	for k, v := range builtinVars {
		vars[k] = v
	}
	for _, v := range compose.TemplateVars(q.Expr) {
		if _, ok := vars[v]; !ok {
			vars[v] = ".*"
		}
	}
	vars["bmc"] = "bmc-00001"
	e, err := compose.Expand(q.Expr, vars)
	require.NoError(t, err)
	return e
}

// TestDashboards checks each dashboard's shape: a unique uid, Grafana's
// current schema, the datasource variable on every panel, variables
// defined before use, panels on the 24-column grid, and every query an
// expression of the data the pipeline produces.
func TestDashboards(t *testing.T) {
	dashboards, err := compose.Dashboards()
	require.NoError(t, err)
	var files []string
	for _, d := range dashboards {
		files = append(files, d.File)
	}
	require.Equal(t, []string{"bmc.json", "bmcstream.json", "fleet.json", "power.json", "rack-thermal.json"}, files)
	uids := map[string]bool{}
	total := 0
	for _, d := range dashboards {
		t.Run(d.File, func(t *testing.T) {
			require.NotEmpty(t, d.Title)
			require.True(t, strings.HasPrefix(d.UID, "bmcstream-"), d.UID)
			require.False(t, uids[d.UID], "uid %s is unique", d.UID)
			uids[d.UID] = true
			require.GreaterOrEqual(t, d.SchemaVersion, 36)

			defined := map[string]bool{}
			for k := range builtinVars {
				defined[k] = true
			}
			for _, v := range d.Templating.List {
				for _, used := range compose.TemplateVars(v.QueryText()) {
					require.True(t, defined[used], "variable %s uses $%s, defined after it or not at all", v.Name, used)
				}
				defined[v.Name] = true
				if v.IncludeAll {
					require.Equal(t, ".*", v.AllValue, "variable %s: All matches every value, the empty one too", v.Name)
				}
			}
			require.True(t, defined["datasource"], "a datasource variable")

			ids := map[int]bool{}
			for _, p := range d.AllPanels() {
				require.False(t, ids[p.ID], "panel id %d is unique", p.ID)
				ids[p.ID] = true
				if p.Type == "row" {
					continue
				}
				require.NotNil(t, p.Datasource, p.Title)
				require.Equal(t, "${datasource}", p.Datasource.UID, "%s uses the datasource variable", p.Title)
				require.NotEmpty(t, p.Targets, "%s has queries", p.Title)
				refs := map[string]bool{}
				for _, tg := range p.Targets {
					require.NotEmpty(t, tg.Expr, "%s %s", p.Title, tg.RefID)
					require.False(t, refs[tg.RefID], "%s: refId %s is unique", p.Title, tg.RefID)
					refs[tg.RefID] = true
				}
			}
			for _, q := range d.Queries() {
				for _, v := range compose.TemplateVars(q.Expr) {
					require.True(t, defined[v], "%s uses $%s, which is not defined", q, v)
				}
			}
			total += len(d.Queries())
		})
	}
	require.Greater(t, total, 80)
	checkGrid(t, dashboards)
}

// checkGrid requires every panel inside the 24-column grid and no two
// panels overlapping.
func checkGrid(t *testing.T, dashboards []compose.Dashboard) {
	t.Helper()
	for _, d := range dashboards {
		raw, err := os.ReadFile(filepath.Join(compose.DashboardDir, d.File))
		require.NoError(t, err)
		var doc struct {
			Panels []struct {
				Title   string                   `yaml:"title"`
				GridPos struct{ H, W, X, Y int } `yaml:"gridPos"`
			} `yaml:"panels"`
		}
		require.NoError(t, yaml.Unmarshal(raw, &doc)) // JSON is YAML
		cells := map[[2]int]string{}
		for _, p := range doc.Panels {
			g := p.GridPos
			require.True(t, g.W > 0 && g.H > 0 && g.X >= 0 && g.X+g.W <= 24, "%s / %s: %+v on the grid", d.File, p.Title, g)
			for x := g.X; x < g.X+g.W; x++ {
				for y := g.Y; y < g.Y+g.H; y++ {
					other, taken := cells[[2]int{x, y}]
					require.False(t, taken, "%s: %q overlaps %q", d.File, p.Title, other)
					cells[[2]int{x, y}] = p.Title
				}
			}
		}
	}
}

// ruleFile is the part of a Prometheus rule file the checks read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert  string `yaml:"alert"`
			Record string `yaml:"record"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestQueriesUseProducedMetrics checks every PromQL expression of the
// dashboards and of the alert and recording rules: each metric it selects
// is one the pipeline produces (docs/metrics.md, the rules' recorded
// series, the self-metrics the programs register), and each is valid
// PromQL for Debian's promtool.
func TestQueriesUseProducedMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway and a poller to read their self-metrics")
	}
	have := producedMetrics(t)
	for _, bogus := range []string{"bmc_temperature_fahrenheit", "bmc_fan_speed_upper_critical_celsius", "bmcstream_gateway_queue_depth", "bmcstream_jetstream_consumer_pending"} {
		require.False(t, have.has(bogus), "%s is not produced", bogus)
	}
	require.True(t, have.has("bmc_temperature_upper_fatal_celsius"), "thresholds by the naming rule")
	require.True(t, have.has("bmcstream_poller_poll_duration_seconds_count"), "a histogram's series")

	type expr struct{ where, promql string }
	var exprs []expr
	dashboards, err := compose.Dashboards()
	require.NoError(t, err)
	for _, d := range dashboards {
		for _, q := range d.Queries() {
			exprs = append(exprs, expr{q.String(), expandAll(t, q)})
		}
	}
	nDashboard := len(exprs)
	files, err := filepath.Glob("prometheus/rules/*.rules.yml")
	require.NoError(t, err)
	for _, f := range files {
		var rf ruleFile
		readYAML(t, f, &rf)
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				exprs = append(exprs, expr{fmt.Sprintf("%s / %s%s", filepath.Base(f), r.Alert, r.Record), r.Expr})
			}
		}
	}

	used := map[string][]string{}
	for _, e := range exprs {
		names := compose.MetricNames(e.promql)
		require.NotEmpty(t, names, "%s selects no metric", e.where)
		for _, n := range names {
			require.True(t, have.has(n), "%s uses %s, which the pipeline does not produce", e.where, n)
			used[n] = append(used[n], e.where)
		}
	}
	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%d dashboard queries and %d rule expressions use %d metrics, all produced: %s",
		nDashboard, len(exprs)-nDashboard, len(names), strings.Join(names, " "))

	// Syntax, by the real parser: every expression as a recording rule.
	promtool := requireTool(t, "promtool", "prometheus")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboards\n    rules:\n")
	for i, e := range exprs {
		fmt.Fprintf(&b, "      # %s\n      - record: check:expr_%d\n        expr: %q\n", strings.ReplaceAll(e.where, "\n", " "), i, e.promql)
	}
	f := filepath.Join(t.TempDir(), "queries.rules.yml")
	require.NoError(t, os.WriteFile(f, []byte(b.String()), 0o644))
	out := runTool(t, ".", promtool, "check", "rules", f)
	require.Contains(t, out, fmt.Sprintf("SUCCESS: %d rules found", len(exprs)))
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`bmc_up`, []string{"bmc_up"}},
		{`sum by (site) (1 - max by (bmc, site) (bmc_up{site=~".*"}))`, []string{"bmc_up"}},
		{`histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))`, []string{"x_bucket"}},
		{`a / on (site, rack) group_left (name) b > bool 0.9`, []string{"a", "b"}},
		{`label_replace(m{kind=~"psu_.*"}, "psu", "$1", "sensor", "(.*)")`, []string{"m"}},
		{`topk by (bmc) (1, info{x="a,b)"})`, []string{"info"}},
		{`count(up offset 5m) or vector(0) unless ignoring (job) c`, []string{"c", "up"}},
		{`max without (protocol) (bmc_up) == 0 and on (bmc) z`, []string{"bmc_up", "z"}},
		{`sum(rate(a_total[1m] @ 1609746000)) # comment b`, []string{"a_total"}},
		{`1e3 * 0x1F + inf - NaN`, nil},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, compose.MetricNames(tc.expr), tc.expr)
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"site": ".*", "__rate_interval": "1m"}
	got, err := compose.Expand(`rate(x{site=~"$site"}[$__rate_interval]) + y{site=~"${site}"} + z{site=~"[[site]]"}`, vars)
	require.NoError(t, err)
	require.Equal(t, `rate(x{site=~".*"}[1m]) + y{site=~".*"} + z{site=~".*"}`, got)
	_, err = compose.Expand(`x{rack=~"$rack"}`, vars)
	require.ErrorContains(t, err, "no value for rack")
	require.Equal(t, []string{"__rate_interval", "site"}, compose.TemplateVars(`x{site="$site"}[$__rate_interval]`))
}
