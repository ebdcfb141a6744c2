package gwfleet

import (
	"testing"
	"time"

	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// TestFleet checks the load is what the benchmarks claim: 40-120 readings
// per snapshot, every personality producing series.
func TestFleet(t *testing.T) {
	ts, err := Templates(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	f := New(len(ts), ts)
	for i := range ts {
		s := f.Snapshot(i, 0, time.Now().Add(-time.Minute))
		out, err := f.Series([]*v1.Snapshot{s})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := s.Marshal()
		t.Logf("template %d: %d readings, %d bytes, %d samples, a series: %v", i, len(s.Readings), len(b), len(out), out[len(out)-1].Series.Labels)
		if n := len(s.Readings); n < 40 || n > 120 {
			t.Errorf("template %d: %d readings, want 40-120", i, n)
		}
		if len(out) == 0 {
			t.Errorf("template %d: no series", i)
		}
	}
}
