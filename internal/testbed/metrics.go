package testbed

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// MetricValue reads one child of a counter or gauge that g gathers;
// labels are name/value pairs in label-name order. Absent, it is 0 (a
// labelled child is only made on first use).
func MetricValue(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	v, _ := metric(t, g, name, labels)
	return v
}

// MustMetricValue is MetricValue for a child that must exist: the test
// fails when it does not.
func MustMetricValue(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	v, ok := metric(t, g, name, labels)
	if !ok {
		t.Fatalf("no %s%v", name, labels)
	}
	return v
}

func metric(t testing.TB, g prometheus.Gatherer, name string, labels []string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if fmt.Sprint(pairs(m)) != fmt.Sprint(labels) {
				continue
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue(), true
			}
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

func pairs(m *dto.Metric) []string {
	var out []string
	for _, l := range m.GetLabel() {
		out = append(out, l.GetName(), l.GetValue())
	}
	return out
}
