package pipeline

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/series"
)

// rlSample makes a sample of metric name with labels given as name, value
// pairs, sorted and hashed as a producer would.
func rlSample(name string, t int64, v float64, kv ...string) series.Sample {
	ls := []prompb.Label{{Name: model.MetricNameLabel, Value: name}}
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	series.Sort(ls)
	return series.Sample{Series: series.New(ls), T: t, V: v}
}

// rlString renders a label set as {a="b",...} for comparisons.
func rlString(ls []prompb.Label) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("%s=%q", l.Name, l.Value)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func rlBase() []series.Sample {
	return []series.Sample{
		rlSample("bmc_power_watts", 1000, 350, "bmc", "bmc-1", "rack", "r1", "site", "ctc"),
		rlSample("bmc_temperature_celsius", 1000, 24, "bmc", "bmc-1", "context", "intake", "rack", "r1", "sensor", "Inlet Temp", "site", "ctc"),
		rlSample("bmc_temperature_celsius", 1000, 61, "bmc", "bmc-2", "context", "cpu", "rack", "r2", "sensor", "CPU1 Temp", "site", "ctc"),
	}
}

func TestRelabelApply(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // label sets of the surviving samples, in order
	}{
		{
			name: "no configs pass everything",
			yaml: `[]`,
			want: []string{
				`{__name__="bmc_power_watts",bmc="bmc-1",rack="r1",site="ctc"}`,
				`{__name__="bmc_temperature_celsius",bmc="bmc-1",context="intake",rack="r1",sensor="Inlet Temp",site="ctc"}`,
				`{__name__="bmc_temperature_celsius",bmc="bmc-2",context="cpu",rack="r2",sensor="CPU1 Temp",site="ctc"}`,
			},
		},
		{
			name: "keep by regex",
			yaml: `
- source_labels: [__name__, context]
  regex: bmc_power_watts;|bmc_temperature_celsius;intake
  action: keep
`,
			want: []string{
				`{__name__="bmc_power_watts",bmc="bmc-1",rack="r1",site="ctc"}`,
				`{__name__="bmc_temperature_celsius",bmc="bmc-1",context="intake",rack="r1",sensor="Inlet Temp",site="ctc"}`,
			},
		},
		{
			name: "drop by regex",
			yaml: `
- source_labels: [context]
  regex: cpu|memory
  action: drop
`,
			want: []string{
				`{__name__="bmc_power_watts",bmc="bmc-1",rack="r1",site="ctc"}`,
				`{__name__="bmc_temperature_celsius",bmc="bmc-1",context="intake",rack="r1",sensor="Inlet Temp",site="ctc"}`,
			},
		},
		{
			name: "replace target label",
			yaml: `
- source_labels: [site, rack]
  separator: /
  regex: (.+)/r(\d+)
  target_label: location
  replacement: $1-rack$2
`,
			want: []string{
				`{__name__="bmc_power_watts",bmc="bmc-1",location="ctc-rack1",rack="r1",site="ctc"}`,
				`{__name__="bmc_temperature_celsius",bmc="bmc-1",context="intake",location="ctc-rack1",rack="r1",sensor="Inlet Temp",site="ctc"}`,
				`{__name__="bmc_temperature_celsius",bmc="bmc-2",context="cpu",location="ctc-rack2",rack="r2",sensor="CPU1 Temp",site="ctc"}`,
			},
		},
		{
			name: "replace sorts a label that sorts first",
			yaml: `
- target_label: AAA
  replacement: x
`,
			want: []string{
				`{AAA="x",__name__="bmc_power_watts",bmc="bmc-1",rack="r1",site="ctc"}`,
				`{AAA="x",__name__="bmc_temperature_celsius",bmc="bmc-1",context="intake",rack="r1",sensor="Inlet Temp",site="ctc"}`,
				`{AAA="x",__name__="bmc_temperature_celsius",bmc="bmc-2",context="cpu",rack="r2",sensor="CPU1 Temp",site="ctc"}`,
			},
		},
		{
			name: "labeldrop",
			yaml: `
- regex: sensor|context
  action: labeldrop
`,
			want: []string{
				`{__name__="bmc_power_watts",bmc="bmc-1",rack="r1",site="ctc"}`,
				`{__name__="bmc_temperature_celsius",bmc="bmc-1",rack="r1",site="ctc"}`,
				`{__name__="bmc_temperature_celsius",bmc="bmc-2",rack="r2",site="ctc"}`,
			},
		},
		{
			name: "hashmod then keep one shard",
			// md5 of "bmc-1" and "bmc-2", last 8 bytes mod 2, as Prometheus computes it.
			yaml: `
- source_labels: [bmc]
  modulus: 2
  target_label: __tmp_shard
  action: hashmod
- source_labels: [__tmp_shard]
  regex: "0"
  action: keep
- regex: __tmp_shard
  action: labeldrop
`,
			want: []string{
				`{__name__="bmc_power_watts",bmc="bmc-1",rack="r1",site="ctc"}`,
				`{__name__="bmc_temperature_celsius",bmc="bmc-1",context="intake",rack="r1",sensor="Inlet Temp",site="ctc"}`,
			},
		},
		{
			name: "a series left without a name is dropped",
			yaml: `
- source_labels: [context]
  regex: cpu
  target_label: __name__
  replacement: ""
`,
			want: []string{
				`{__name__="bmc_power_watts",bmc="bmc-1",rack="r1",site="ctc"}`,
				`{__name__="bmc_temperature_celsius",bmc="bmc-1",context="intake",rack="r1",sensor="Inlet Temp",site="ctc"}`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfgs, err := ParseRelabelYAML([]byte(tt.yaml))
			require.NoError(t, err)
			r, err := NewRelabeler(cfgs)
			require.NoError(t, err)

			in := rlBase()
			for pass := range 2 { // the second pass is served by the cache
				got := r.Apply(nil, in)
				gotLS := make([]string, len(got))
				for i, s := range got {
					gotLS[i] = rlString(s.Series.Labels.Prom())
					require.Equal(t, series.Hash(s.Series.Labels.Prom()), s.Series.Hash, "pass %d: hash of %s", pass, gotLS[i])
					require.Equal(t, in[0].T, s.T)
				}
				require.Equal(t, tt.want, gotLS, "pass %d", pass)
			}
		})
	}
}

func TestRelabelMatchesPrometheus(t *testing.T) {
	// The stage must decide as Prometheus does, so users can reuse their
	// rules and shard alike elsewhere: compare with relabel.ProcessBuilder
	// run directly on labels.Labels.
	cfgs := mustRelabel(t, `
- source_labels: [bmc]
  modulus: 7
  target_label: shard
  action: hashmod
- source_labels: [shard]
  regex: "6"
  action: drop
- regex: (site|rack)
  replacement: loc_$1
  action: labelmap
- source_labels: [sensor]
  target_label: sensor
  action: lowercase
`)
	r, err := NewRelabeler(cfgs)
	require.NoError(t, err)
	for i := range 50 {
		s := rlSample("bmc_temperature_celsius", 1, 1, "bmc", fmt.Sprintf("10.0.0.%d", i),
			"site", "ctc", "rack", fmt.Sprintf("r%d", i%3), "sensor", "Inlet Temp")
		got := r.Apply(nil, []series.Sample{s})

		lb := labels.NewBuilder(labels.EmptyLabels())
		for _, l := range s.Series.Labels.Prom() {
			lb.Set(l.Name, l.Value)
		}
		keep := relabel.ProcessBuilder(lb, cfgs...)
		if !keep {
			require.Empty(t, got, "bmc %d", i)
			continue
		}
		require.Len(t, got, 1, "bmc %d", i)
		want := lb.Labels()
		require.Equal(t, want.String(), labelsFromProm(got[0].Series.Labels.Prom()).String())
	}
}

func labelsFromProm(ls []prompb.Label) labels.Labels {
	b := labels.NewScratchBuilder(len(ls))
	for _, l := range ls {
		b.Add(l.Name, l.Value)
	}
	return b.Labels()
}

func TestRelabelCache(t *testing.T) {
	cfgs, err := ParseRelabelYAML([]byte(`
- source_labels: [context]
  regex: cpu
  action: drop
- source_labels: [rack]
  target_label: rack_name
`))
	require.NoError(t, err)
	r, err := NewRelabeler(cfgs)
	require.NoError(t, err)

	t.Run("hit returns identical slices", func(t *testing.T) {
		first := r.Apply(nil, rlBase())
		require.Len(t, first, 2)
		// Fresh input slices with equal labels, as a producer rebuilding
		// its label sets would send: still served from the cache.
		second := r.Apply(nil, rlBase())
		require.Len(t, second, 2)
		for i := range first {
			require.Same(t, first[i].Series, second[i].Series)
			require.Equal(t, first[i].Series.Hash, second[i].Series.Hash)
		}
	})

	t.Run("unchanged series keep their input slice", func(t *testing.T) {
		r0, err := NewRelabeler(mustRelabel(t, `
- source_labels: [context]
  regex: cpu
  action: drop
`))
		require.NoError(t, err)
		in := rlBase()
		got := r0.Apply(nil, in)
		require.Len(t, got, 2)
		require.Same(t, in[0].Series, got[0].Series)
		require.Equal(t, in[0].Series.Hash, got[0].Series.Hash)
	})

	t.Run("hash collision is told apart", func(t *testing.T) {
		a := rlSample("bmc_up", 1, 1, "bmc", "a", "rack", "ra")
		b := rlSample("bmc_up", 1, 1, "bmc", "b", "rack", "rb")
		b.Series = &series.Series{Labels: b.Series.Labels, Hash: a.Series.Hash, Slot: -1}
		got := r.Apply(nil, []series.Sample{a, b, a, b})
		require.Len(t, got, 4)
		for i, want := range []string{"ra", "rb", "ra", "rb"} {
			require.Equal(t, want, got[i].Series.Labels.Get("rack_name"))
			require.Equal(t, series.Hash(got[i].Series.Labels.Prom()), got[i].Series.Hash)
		}
	})

	t.Run("in place", func(t *testing.T) {
		in := rlBase()
		got := r.Apply(in[:0], in)
		require.Len(t, got, 2)
		require.Equal(t, "r1", got[0].Series.Labels.Get("rack_name"))
		require.Equal(t, "bmc_temperature_celsius", got[1].Series.Labels.Get("__name__"))
	})

	t.Run("bounded", func(t *testing.T) {
		rb, err := NewRelabeler(cfgs)
		require.NoError(t, err)
		rb.cacheSize = 8
		for i := range 100 {
			rb.Apply(nil, []series.Sample{rlSample("bmc_up", 1, 1, "bmc", fmt.Sprint(i))})
			require.LessOrEqual(t, len(rb.cur), 8)
			require.LessOrEqual(t, len(rb.prev), 8)
		}
		got := rb.Apply(nil, []series.Sample{rlSample("bmc_up", 1, 1, "bmc", "0", "rack", "x")})
		require.Equal(t, "x", got[0].Series.Labels.Get("rack_name"))
	})
}

func mustRelabel(t *testing.T, y string) []*relabel.Config {
	t.Helper()
	cfgs, err := ParseRelabelYAML([]byte(y))
	require.NoError(t, err)
	return cfgs
}

func TestRelabelInvalidConfig(t *testing.T) {
	yamlTests := []struct {
		name, yaml, err string
	}{
		{"unknown key", "- source_labels: [a]\n  regexp: x\n", "line 2"},
		{"unknown action", "- action: frobnicate\n", "unknown relabel action"},
		{"hashmod without modulus", "- source_labels: [a]\n  target_label: b\n  action: hashmod\n", "non-zero modulus"},
		{"replace without target", "- source_labels: [a]\n", "requires 'target_label'"},
		{"bad regex", "- source_labels: [a]\n  regex: '('\n  action: keep\n", "error parsing regexp"},
		{"labeldrop with source labels", "- source_labels: [a]\n  regex: b\n  action: labeldrop\n", "requires only 'regex'"},
		{"empty entry", "- \n", "config 0: config is empty"},
		{"not a list", "action: keep\n", "parse relabel configs"},
	}
	for _, tt := range yamlTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRelabelYAML([]byte(tt.yaml))
			require.ErrorContains(t, err, tt.err)
		})
	}

	progTests := []struct {
		name string
		cfg  *relabel.Config
		err  string
	}{
		{"nil", nil, "config 0: config is empty"},
		{"no action", &relabel.Config{Regex: relabel.MustNewRegexp("x")}, "action cannot be empty"},
		{"unknown action", &relabel.Config{Action: "nope", Regex: relabel.MustNewRegexp("x")}, `unknown relabel action "nope"`},
		{"no regex", &relabel.Config{Action: relabel.Keep}, "requires a regex"},
		{"bad scheme", &relabel.Config{Action: relabel.Keep, Regex: relabel.MustNewRegexp("x"), NameValidationScheme: 42}, "validation method"},
	}
	for _, tt := range progTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRelabeler([]*relabel.Config{tt.cfg})
			require.ErrorContains(t, err, tt.err)
			require.ErrorContains(t, err, "validate relabel config 0")
		})
	}

	t.Run("caller's configs are not modified", func(t *testing.T) {
		c := &relabel.Config{Action: relabel.Keep, Regex: relabel.MustNewRegexp("x"), SourceLabels: model.LabelNames{"a"}}
		_, err := NewRelabeler([]*relabel.Config{c})
		require.NoError(t, err)
		require.Equal(t, model.UnsetValidation, c.NameValidationScheme)
	})
}

func BenchmarkRelabelApply(b *testing.B) {
	cfgs, err := ParseRelabelYAML([]byte(`
- source_labels: [context]
  regex: memory|storage
  action: drop
- source_labels: [site, rack]
  separator: /
  target_label: location
- regex: position
  action: labeldrop
`))
	require.NoError(b, err)
	// One BMC's poll: 60 series with six inventory labels.
	in := make([]series.Sample, 60)
	for i := range in {
		in[i] = rlSample("bmc_temperature_celsius", 1000, 30, "bmc", "10.0.5.22", "context", Contexts[i%len(Contexts)],
			"sensor", fmt.Sprintf("Temp %d", i), "site", "ctc", "room", "r1", "row", "r1-b", "rack", "i5", "position", "u22")
	}

	b.Run("cached", func(b *testing.B) {
		r, err := NewRelabeler(cfgs)
		require.NoError(b, err)
		dst := r.Apply(nil, in)
		allocs := testing.AllocsPerRun(10, func() { dst = r.Apply(dst[:0], in) })
		require.Zero(b, allocs)
		b.ReportAllocs()
		for b.Loop() {
			dst = r.Apply(dst[:0], in)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)), "ns/sample")
	})
	b.Run("uncached", func(b *testing.B) {
		r, err := NewRelabeler(cfgs)
		require.NoError(b, err)
		b.ReportAllocs()
		for b.Loop() {
			for i := range in {
				r.relabel(in[i].Series)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)), "ns/sample")
	})
}
