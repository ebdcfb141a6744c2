package pipeline

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

func marshal(t testing.TB, s *v1.Snapshot) []byte {
	t.Helper()
	b, err := s.Marshal()
	require.NoError(t, err)
	return b
}

func readings(n int) []v1.Reading {
	out := make([]v1.Reading, n)
	for i := range out {
		out[i] = v1.Reading{Name: "t", Kind: v1.Kind_KIND_TEMPERATURE, Value: 20}
	}
	return out
}

// TestDecodeLimits: a snapshot over a limit is refused whole as
// ErrOversized (still an ErrMalformed); one at every limit is accepted.
func TestDecodeLimits(t *testing.T) {
	l := DefaultLimits
	long := strings.Repeat("x", l.MaxStringLen+1)
	full := strings.Repeat("x", l.MaxStringLen)
	info := func(n int) map[string]string {
		m := make(map[string]string, n)
		for i := range n {
			m[string(rune('a'+i%26))+strings.Repeat("k", i/26)] = "v"
		}
		return m
	}
	ths := func(n int) []v1.Threshold {
		return make([]v1.Threshold, n)
	}
	for _, tc := range []struct {
		name string
		s    v1.Snapshot
		ok   bool
	}{
		{"at every limit", v1.Snapshot{BmcId: full, PollerId: full, Address: full, PollStartMs: 1, Info: info(l.MaxInfo),
			Readings: append(readings(l.MaxReadings-1), v1.Reading{Name: full, Id: full, Unit: full, Context: full, SensorType: full, State: full, Parent: full, Thresholds: ths(l.MaxThresholds)})}, true},
		{"too many readings", v1.Snapshot{BmcId: "a", PollStartMs: 1, Readings: readings(l.MaxReadings + 1)}, false},
		{"too many info entries", v1.Snapshot{BmcId: "a", PollStartMs: 1, Info: info(l.MaxInfo + 1)}, false},
		{"long bmc id", v1.Snapshot{BmcId: long, PollStartMs: 1}, false},
		{"long poller id", v1.Snapshot{BmcId: "a", PollerId: long, PollStartMs: 1}, false},
		{"long sensor name", v1.Snapshot{BmcId: "a", PollStartMs: 1, Readings: []v1.Reading{{Name: strings.Repeat("n", 100<<10)}}}, false},
		{"long unit", v1.Snapshot{BmcId: "a", PollStartMs: 1, Readings: []v1.Reading{{Name: "n", Unit: long}}}, false},
		{"long info value", v1.Snapshot{BmcId: "a", PollStartMs: 1, Info: map[string]string{"vendor": long}}, false},
		{"too many thresholds", v1.Snapshot{BmcId: "a", PollStartMs: 1, Readings: []v1.Reading{{Name: "n", Thresholds: ths(l.MaxThresholds + 1)}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s v1.Snapshot
			err := Decode(marshal(t, &tc.s), &s)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrOversized)
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}

// TestDecodeRefusesManyReadingsBeforeDecoding: 500 000 empty readings fit
// in a 1 MiB message and would take about 100 MB decoded; they are counted
// on the bytes and refused without that allocation, and the buffer reused
// between snapshots never keeps a larger capacity.
func TestDecodeRefusesManyReadingsBeforeDecoding(t *testing.T) {
	head := marshal(t, &v1.Snapshot{BmcId: "a", PollStartMs: 1})
	data := append([]byte(nil), head...)
	for len(data) < 1<<20-2 {
		data = append(data, 13<<3|2, 0) // readings: an empty Reading
	}
	var s v1.Snapshot
	var err error
	allocs := testing.AllocsPerRun(5, func() { err = Decode(data, &s) })
	require.ErrorIs(t, err, ErrOversized)
	require.Less(t, allocs, 10.0)

	s.Readings = make([]v1.Reading, 0, 10*DefaultLimits.MaxReadings)
	require.NoError(t, Decode(head, &s))
	require.LessOrEqual(t, cap(s.Readings), 2*DefaultLimits.MaxReadings)
}

// TestDecodeSkipsUnknownFields: a newer schema's fields (unknown numbers,
// at the top level and inside readings and thresholds) are skipped and the
// snapshot is the v1 one.
func TestDecodeSkipsUnknownFields(t *testing.T) {
	want := &v1.Snapshot{BmcId: "a", PollStartMs: 1000, Up: true, Info: map[string]string{"vendor": "x"},
		Readings: []v1.Reading{{Name: "t", Kind: v1.Kind_KIND_TEMPERATURE, Value: 21, Thresholds: []v1.Threshold{{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: 40}}}}}
	unknown := func(b []byte, field int) []byte {
		b = binary.AppendUvarint(b, uint64(field)<<3) // wire type 0: varint
		b = binary.AppendUvarint(b, 42)
		b = binary.AppendUvarint(b, uint64(field+1)<<3|2)
		b = binary.AppendUvarint(b, 3)
		b = append(b, "new"...)
		b = binary.AppendUvarint(b, uint64(field+2)<<3|1)
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(1.5))
	}
	thb, err := (&v1.Threshold{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: 40}).Marshal()
	require.NoError(t, err)
	th := unknown(thb, 20)
	rb, err := (&v1.Reading{Name: "t", Kind: v1.Kind_KIND_TEMPERATURE, Value: 21}).Marshal()
	require.NoError(t, err)
	rb = binary.AppendUvarint(rb, 12<<3|2) // thresholds
	rb = binary.AppendUvarint(rb, uint64(len(th)))
	rb = append(rb, th...)
	rb = unknown(rb, 50)
	top := marshal(t, &v1.Snapshot{BmcId: "a", PollStartMs: 1000, Up: true, Info: map[string]string{"vendor": "x"}})
	top = unknown(top, 100)
	top = binary.AppendUvarint(top, 13<<3|2)
	top = binary.AppendUvarint(top, uint64(len(rb)))
	top = append(top, rb...)

	var got v1.Snapshot
	require.NoError(t, Decode(top, &got))
	require.Equal(t, want.BmcId, got.BmcId)
	require.Equal(t, want.Info, got.Info)
	require.Equal(t, want.Readings, got.Readings)
}

// TestCheckTimes: a poll time far from now refuses the snapshot; a
// reading's own far time removes that reading only.
func TestCheckTimes(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	l := DefaultLimits
	for _, tc := range []struct {
		name string
		at   int64
		ok   bool
	}{
		{"now", now, true},
		{"skewed 5 min ahead", now + 5*60_000, true},
		{"24 h old", now - 24*3600_000, true},
		{"an hour ahead", now + 3600_000, false},
		{"a year ahead", now + 365*24*3600_000, false},
		{"two days old", now - 48*3600_000, false},
		{"1970", 1, false},
		{"far future", math.MaxInt64, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &v1.Snapshot{BmcId: "a", PollStartMs: tc.at}
			_, err := l.CheckTimes(s, now)
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrBadTime)
				require.ErrorIs(t, err, ErrMalformed)
			}
		})
	}
	s := &v1.Snapshot{BmcId: "a", PollStartMs: now, Readings: []v1.Reading{
		{Name: "ok"}, {Name: "own time ok", TimestampMs: now - 1000}, {Name: "future", TimestampMs: now + 86400_000},
		{Name: "ancient", TimestampMs: 5}, {Name: "last"},
	}}
	removed, err := l.CheckTimes(s, now)
	require.NoError(t, err)
	require.Equal(t, 2, removed)
	var names []string
	for _, r := range s.Readings {
		names = append(names, r.Name)
	}
	require.Equal(t, []string{"ok", "own time ok", "last"}, names)
}

// TestNormaliseNeverWritesInfinity: a finite reading that overflows in
// base units (1e306 kW) is invalid, and so is its threshold; neither
// becomes an infinite sample.
func TestNormaliseNeverWritesInfinity(t *testing.T) {
	n, err := NewNormaliser(NormaliserOptions{})
	require.NoError(t, err)
	s := &v1.Snapshot{BmcId: "a", PollStartMs: 1000, Up: true, Readings: []v1.Reading{
		{Name: "PSU1", Kind: v1.Kind_KIND_POWER, Unit: "kW", SensorType: "PowerSupplyInput", Value: 1e306,
			Thresholds: []v1.Threshold{{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: math.MaxFloat64}}},
		{Name: "Inlet", Kind: v1.Kind_KIND_TEMPERATURE, Unit: "F", Context: "Intake", Value: -math.MaxFloat64},
		{Name: "Fan1", Kind: v1.Kind_KIND_FAN, Unit: "RPM", Value: math.Inf(1)},
	}}
	var st Stats
	out := n.Normalise(nil, s, []prompb.Label{{Name: "bmc", Value: "a"}}, &st)
	for _, smp := range out {
		require.False(t, math.IsInf(smp.V, 0) || math.IsNaN(smp.V), "%v", smp)
	}
	require.Equal(t, 3, st.Invalid)
}

// FuzzDecodeLimits: whatever the bytes, an accepted snapshot is within
// the limits, and decoding never keeps more than twice MaxReadings.
func FuzzDecodeLimits(f *testing.F) {
	l := Limits{MaxReadings: 8, MaxInfo: 4, MaxThresholds: 2, MaxStringLen: 16}
	b, _ := (&v1.Snapshot{BmcId: "a", PollStartMs: 1, Info: map[string]string{"k": "v"}, Readings: readings(8)}).Marshal()
	f.Add(b)
	b, _ = (&v1.Snapshot{BmcId: "a", PollStartMs: 1, Readings: []v1.Reading{{Name: "n", Thresholds: make([]v1.Threshold, 3)}}}).Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var s v1.Snapshot
		if err := l.Decode(data, &s); err != nil {
			return
		}
		if len(s.Readings) > 8 || len(s.Info) > 4 || len(s.BmcId) > 16 || len(s.PollerId) > 16 {
			t.Fatalf("over the limits: %d readings, %d info, id %d bytes", len(s.Readings), len(s.Info), len(s.BmcId))
		}
		for _, r := range s.Readings {
			if len(r.Thresholds) > 2 || len(r.Name) > 16 || len(r.Unit) > 16 {
				t.Fatalf("reading over the limits: %+v", r)
			}
		}
		if cap(s.Readings) > 16 {
			t.Fatalf("kept capacity %d", cap(s.Readings))
		}
	})
}
