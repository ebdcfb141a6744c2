package bmcstreamv1

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// fill sets every field of the struct v points at to a non-zero value that
// depends on seed, recursing into slices of structs and maps: a field added
// to the schema later is set too, so TestUnmarshalSharedEveryField fails
// until UnmarshalShared decodes it.
func fill(v reflect.Value, seed int) {
	t := v.Type()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if !t.Field(i).IsExported() || t.Field(i).Name[0] == 'X' && t.Field(i).Name[1] == 'X' {
			continue
		}
		fillValue(f, seed+i*7)
	}
}

func fillValue(f reflect.Value, seed int) {
	switch f.Kind() {
	case reflect.String:
		f.SetString("s" + string(rune('a'+seed%26)) + "-value")
	case reflect.Bool:
		f.SetBool(true)
	case reflect.Int32, reflect.Int64:
		f.SetInt(int64(seed%5 + 1))
	case reflect.Uint32, reflect.Uint64:
		f.SetUint(uint64(seed%9 + 1))
	case reflect.Float64:
		f.SetFloat(float64(seed) + 0.5)
	case reflect.Slice:
		s := reflect.MakeSlice(f.Type(), 2, 2)
		for j := 0; j < 2; j++ {
			fillValue(s.Index(j), seed+j)
		}
		f.Set(s)
	case reflect.Struct:
		fill(f, seed)
	case reflect.Map:
		m := reflect.MakeMap(f.Type())
		m.SetMapIndex(reflect.ValueOf("vendor"), reflect.ValueOf("v"))
		m.SetMapIndex(reflect.ValueOf("model"), reflect.ValueOf("m"))
		f.Set(m)
	default:
		panic("fill: unhandled kind " + f.Kind().String())
	}
}

// same compares two decoded snapshots, an empty Thresholds equal to nil.
func same(a, b *Snapshot) bool {
	norm := func(s *Snapshot) Snapshot {
		c := *s
		c.Readings = append([]Reading(nil), s.Readings...)
		for i := range c.Readings {
			if len(c.Readings[i].Thresholds) == 0 {
				c.Readings[i].Thresholds = nil
			}
		}
		if len(c.Readings) == 0 {
			c.Readings = nil
		}
		if len(c.Info) == 0 {
			c.Info = nil
		}
		return c
	}
	x, y := norm(a), norm(b)
	return reflect.DeepEqual(x, y) || nanEqual(&x, &y)
}

// nanEqual treats NaN values as equal (DeepEqual does not).
func nanEqual(a, b *Snapshot) bool {
	if len(a.Readings) != len(b.Readings) {
		return false
	}
	for i := range a.Readings {
		ra, rb := a.Readings[i], b.Readings[i]
		if math.IsNaN(ra.Value) && math.IsNaN(rb.Value) {
			ra.Value, rb.Value = 0, 0
		}
		for j := range min(len(ra.Thresholds), len(rb.Thresholds)) {
			if math.IsNaN(ra.Thresholds[j].Value) && math.IsNaN(rb.Thresholds[j].Value) {
				ra.Thresholds[j].Value, rb.Thresholds[j].Value = 0, 0
			}
		}
		a.Readings[i], b.Readings[i] = ra, rb
	}
	return reflect.DeepEqual(*a, *b)
}

func TestUnmarshalSharedEveryField(t *testing.T) {
	var s Snapshot
	fill(reflect.ValueOf(&s).Elem(), 1)
	data, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var want, got Snapshot
	if err := want.Unmarshal(data); err != nil {
		t.Fatal(err)
	}
	if err := got.UnmarshalShared(data); err != nil {
		t.Fatal(err)
	}
	if !same(&want, &got) {
		t.Fatalf("UnmarshalShared differs from Unmarshal (a field it does not decode?)\n got %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(want, s) {
		t.Fatalf("fill set a value that does not round-trip:\n got %+v\nwant %+v", want, s)
	}
}

// TestUnmarshalSharedAliases shows the contract: reading strings alias the
// message, the snapshot's own strings and info do not.
func TestUnmarshalSharedAliases(t *testing.T) {
	s := Snapshot{BmcId: "bmc-1", Info: map[string]string{"vendor": "acme"}, Readings: []Reading{{Name: "Inlet Temp", Value: 21}}}
	data, _ := s.Marshal()
	var got Snapshot
	if err := got.UnmarshalShared(data); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'x'
	}
	if got.BmcId != "bmc-1" || got.Info["vendor"] != "acme" {
		t.Fatalf("snapshot strings alias the message: %q %v", got.BmcId, got.Info)
	}
	if got.Readings[0].Name == "Inlet Temp" {
		t.Fatal("reading name was copied: the decoder allocates per reading")
	}
}

func TestUnmarshalSharedAllocs(t *testing.T) {
	s := Snapshot{BmcId: "bmc-1", PollStartMs: 1, Info: map[string]string{"vendor": "acme", "model": "x1", "firmware": "1.2.3", "power_state": "On"}}
	for i := range 100 {
		s.Readings = append(s.Readings, Reading{Name: "Temp " + string(rune('a'+i%26)), Id: "id", Unit: "Cel", Value: float64(i),
			Thresholds: []Threshold{{Kind: ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: 90}}})
	}
	data, _ := s.Marshal()
	var got Snapshot
	allocs := testing.AllocsPerRun(50, func() {
		clear(got.Info)
		got = Snapshot{Readings: got.Readings[:0], Info: got.Info}
		if err := got.UnmarshalShared(data); err != nil {
			t.Fatal(err)
		}
	})
	// The bmc_id string; none per reading, threshold or info entry.
	if allocs > 1 {
		t.Fatalf("%v allocations per snapshot of 100 readings, want at most 1", allocs)
	}
	var plain Snapshot
	gogo := testing.AllocsPerRun(50, func() {
		plain = Snapshot{Readings: plain.Readings[:0]}
		_ = plain.Unmarshal(data)
	})
	t.Logf("allocations per snapshot of 100 readings: UnmarshalShared %v, Unmarshal %v", allocs, gogo)
}

func FuzzUnmarshalShared(f *testing.F) {
	var s Snapshot
	fill(reflect.ValueOf(&s).Elem(), 3)
	full, _ := s.Marshal()
	f.Add(full)
	f.Add([]byte{})
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		b := append([]byte(nil), full...)
		for range 3 {
			b[r.IntN(len(b))] = byte(r.IntN(256))
		}
		f.Add(b)
	}
	f.Add(full[:len(full)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		var want Snapshot
		errWant := want.Unmarshal(data)
		// Decode into a snapshot that held something else: reused
		// capacity must not leak into the result.
		got := Snapshot{Readings: make([]Reading, 3, 8)}
		got.Readings[0].Thresholds = make([]Threshold, 4)
		got = Snapshot{Readings: got.Readings[:0]}
		errGot := got.UnmarshalShared(append([]byte(nil), data...))
		if (errWant == nil) != (errGot == nil) {
			t.Fatalf("Unmarshal error %v, UnmarshalShared error %v", errWant, errGot)
		}
		if errWant == nil && !same(&want, &got) {
			t.Fatalf("decoded differently:\n got %+v\nwant %+v", got, want)
		}
	})
}
