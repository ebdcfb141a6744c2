package series

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// gogoLabels is what gogo's marshaller writes for a TimeSeries holding
// only ls: the reference AppendEncoded must match byte for byte.
func gogoLabels(t testing.TB, ls []prompb.Label) []byte {
	ts := prompb.TimeSeries{Labels: ls}
	b, err := ts.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pl(nv ...string) []prompb.Label {
	var ls []prompb.Label
	for i := 0; i+1 < len(nv); i += 2 {
		ls = append(ls, prompb.Label{Name: nv[i], Value: nv[i+1]})
	}
	return ls
}

func sorted(ls []prompb.Label) []prompb.Label {
	out := sortedCopy(ls)
	return out
}

func checkSet(t testing.TB, l Labels, want []prompb.Label) {
	t.Helper()
	want = sorted(want)
	if got := l.Prom(); !slices.EqualFunc(got, want, func(a, b prompb.Label) bool { return a.Name == b.Name && a.Value == b.Value }) {
		t.Fatalf("Prom: got %v, want %v", got, want)
	}
	if got, ref := l.AppendEncoded(nil), gogoLabels(t, want); !bytes.Equal(got, ref) {
		t.Fatalf("AppendEncoded differs from gogo's marshal:\n got %x\nwant %x", got, ref)
	}
	if l.EncodedLen() != len(gogoLabels(t, want)) {
		t.Fatalf("EncodedLen %d, want %d", l.EncodedLen(), len(gogoLabels(t, want)))
	}
	if l.Hash() != Hash(want) {
		t.Fatalf("Hash %x, want %x", l.Hash(), Hash(want))
	}
	if l.Len() != len(want) {
		t.Fatalf("Len %d, want %d", l.Len(), len(want))
	}
	for _, w := range want {
		if g := l.Get(w.Name); g != w.Value {
			t.Fatalf("Get(%q) = %q, want %q", w.Name, g, w.Value)
		}
	}
	if l.Name() != l.Get("__name__") {
		t.Fatalf("Name %q, Get(__name__) %q", l.Name(), l.Get("__name__"))
	}
	if g := l.Get("zz_absent"); g != "" {
		t.Fatalf("Get of an absent label = %q", g)
	}
	if !l.EqualProm(want) || !l.Equal(FromProm(want)) {
		t.Fatalf("%v not equal to %v", l, want)
	}
}

func TestLabelsMerge(t *testing.T) {
	base := NewBase(pl("site", "lab", "bmc", "bmc-1", "rack", "r01", "row", "", "position", "7"))
	cases := []struct {
		name string
		own  []prompb.Label
		want []prompb.Label
	}{
		{"interleaved", pl("__name__", "bmc_temperature_celsius", "sensor", "cpu1", "context", "cpu"),
			pl("__name__", "bmc_temperature_celsius", "bmc", "bmc-1", "context", "cpu", "position", "7", "rack", "r01", "sensor", "cpu1", "site", "lab")},
		{"base only", nil, pl("bmc", "bmc-1", "position", "7", "rack", "r01", "site", "lab")},
		{"after all base", pl("zone", "z"), pl("bmc", "bmc-1", "position", "7", "rack", "r01", "site", "lab", "zone", "z")},
		{"own wins", pl("__name__", "m", "rack", "mine"), pl("__name__", "m", "bmc", "bmc-1", "position", "7", "rack", "mine", "site", "lab")},
		{"empty values dropped", pl("__name__", "m", "sensor", ""), pl("__name__", "m", "bmc", "bmc-1", "position", "7", "rack", "r01", "site", "lab")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkSet(t, Make(c.own, base), c.want) })
	}
	checkSet(t, Labels{}, nil)
	checkSet(t, base.Labels(), pl("bmc", "bmc-1", "position", "7", "rack", "r01", "site", "lab"))
	long := strings.Repeat("x", 300) // multi-byte length varints
	checkSet(t, Make(pl("__name__", long, "a", long), base), pl("__name__", long, "a", long, "bmc", "bmc-1", "position", "7", "rack", "r01", "site", "lab"))
}

func TestLabelsShareOwn(t *testing.T) {
	b1 := NewBase(pl("bmc", "a"))
	b2 := NewBase(pl("bmc", "b"))
	x := Make(pl("__name__", "m", "sensor", "s"), b1)
	y := Make(pl("sensor", "s", "__name__", "m"), b2)
	if x.own != y.own {
		t.Fatal("the same own labels on two BMCs are not interned to one string")
	}
	if x.Equal(y) {
		t.Fatal("sets of two BMCs compare equal")
	}
}

func TestLabelsManyLabels(t *testing.T) {
	var own []prompb.Label
	for i := range 70 {
		own = append(own, prompb.Label{Name: "l" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26)), Value: "v"})
	}
	base := NewBase(pl("bmc", "b", "site", "s"))
	want := append(slices.Clone(own), pl("bmc", "b", "site", "s")...)
	checkSet(t, Make(own, base), want)
}

func FuzzLabels(f *testing.F) {
	f.Add("__name__\x00m\x00sensor\x00cpu\x00", "bmc\x00b1\x00site\x00lab\x00")
	f.Add("a\x00\x00b\x00x\x00", "")
	f.Fuzz(func(t *testing.T, own, base string) {
		split := func(s string) []prompb.Label {
			p := strings.Split(s, "\x00")
			var ls []prompb.Label
			for i := 0; i+1 < len(p); i += 2 {
				ls = append(ls, prompb.Label{Name: p[i], Value: p[i+1]})
			}
			return ls
		}
		o, b := split(own), split(base)
		// The expected set: own wins, then base; empty values left out.
		var want []prompb.Label
		want = append(want, sorted(o)...)
		for _, l := range sorted(b) {
			if !hasName(want, l.Name) {
				want = append(want, l)
			}
		}
		checkSet(t, Make(o, NewBase(b)), want)
	})
}

// TestMakeSorted: for sorted own labels, MakeSorted returns exactly what
// Make returns (the same handle, base and mask), and looking up a set
// interned before allocates nothing.
func TestMakeSorted(t *testing.T) {
	base := NewBase(pl("bmc", "b1", "rack", "r1", "site", "s1"))
	for _, own := range [][]prompb.Label{
		nil,
		pl("__name__", "up"),
		pl("__name__", "bmc_temperature_celsius", "context", "cpu", "sensor", "cpu1"),
		pl("__name__", "m", "rack", "mine"), // overlaps the base: stored whole
		pl("__name__", "m", "zone", "z"),
	} {
		for _, b := range []*Base{nil, base} {
			want := Make(own, b)
			got := MakeSorted(own, b)
			if got != want {
				t.Fatalf("MakeSorted(%v, %v) = %v, want %v", own, b.Labels(), got, want)
			}
			checkSet(t, got, append(slices.Clone(own), b.Labels().Prom()...))
		}
	}
	own := pl("__name__", "bmc_fan_speed_rpm", "fan", "fan1")
	MakeSorted(own, base)
	if n := testing.AllocsPerRun(100, func() { MakeSorted(own, base) }); n != 0 {
		t.Fatalf("MakeSorted of an interned set: %v allocations, want 0", n)
	}
}

// TestRebase: a set rebased onto a base of the same names is the set Make
// makes of its own labels and that base; other names, or a set stored
// whole, cannot be rebased.
func TestRebase(t *testing.T) {
	b1 := NewBase(pl("bmc", "b1", "rack", "r1"))
	b2 := NewBase(pl("bmc", "b2", "rack", "r2"))
	own := pl("__name__", "m", "sensor", "s")
	got, ok := Make(own, b1).Rebase(b2)
	if !ok || got != Make(own, b2) {
		t.Fatalf("Rebase: %v %v, want %v", got, ok, Make(own, b2))
	}
	if _, ok := Make(own, b1).Rebase(NewBase(pl("bmc", "b2"))); ok {
		t.Fatal("Rebase onto other names succeeded")
	}
	if _, ok := Make(pl("__name__", "m", "rack", "mine"), b1).Rebase(b2); ok {
		t.Fatal("Rebase of a set stored whole succeeded")
	}
	if got, ok := Make(own, nil).Rebase(NewBase(nil)); !ok || got != Make(own, nil) {
		t.Fatal("Rebase of a set without base onto an empty base")
	}
}
