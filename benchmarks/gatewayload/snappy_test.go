package main

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/golang/snappy"

	"github.com/bmcstream/bmcstream/pkg/inventory"
)

// TestBodiesRoundTrip: the receiver's sample survives the trip to the
// harness, and stays within its bound however many requests arrive.
func TestBodiesRoundTrip(t *testing.T) {
	rc := &receiver{keep: 5, random: rand.New(rand.NewPCG(1, 2))}
	for i := range 100 {
		raw := bytes.Repeat([]byte{byte(i)}, 100+i)
		rc.sample(keptBody{raw: raw, samples: i + 1, sent: len(snappy.Encode(nil, raw))})
	}
	if len(rc.kept) != 5 || rc.seen != 100 {
		t.Fatalf("kept %d of %d requests, want 5 of 100", len(rc.kept), rc.seen)
	}
	var buf bytes.Buffer
	if err := rc.writeBodies(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := readBodies(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("read %d bodies, want 5", len(got))
	}
	late := 0
	for i, b := range got {
		if !bytes.Equal(b.raw, rc.kept[i].raw) || b.samples != rc.kept[i].samples || b.sent != rc.kept[i].sent {
			t.Fatalf("body %d: %d bytes, %d samples, sent %d; kept %d bytes, %d samples, sent %d",
				i, len(b.raw), b.samples, b.sent, len(rc.kept[i].raw), rc.kept[i].samples, rc.kept[i].sent)
		}
		if b.samples > 5 {
			late++
		}
	}
	// A uniform sample of 100, not the first 5.
	if late == 0 {
		t.Fatal("the sample holds only the first requests")
	}
	c, same := snappyFor(got, time.Millisecond)
	if !same || c.samples == 0 || c.cpu < 0 {
		t.Fatalf("snappy ceiling %+v, same sizes %v", c, same)
	}
}

// TestFirstPollOf: the first poll's own CPU is what its samples cost
// beyond the steady rate, never negative.
func TestFirstPollOf(t *testing.T) {
	steady := window{samples: 2_000_000, cpu: 4} // 500 k samples per CPU second
	f := firstPollOf(window{samples: 1_000_000, cpu: 7}, steady)
	if f.atSteady != 2 || f.extra != 5 || f.samples != 1_000_000 {
		t.Fatalf("first poll %+v, want 2 s at the steady rate and 5 s extra", f)
	}
	if f := firstPollOf(window{samples: 1_000_000, cpu: 1}, steady); f.extra != 0 {
		t.Fatalf("first poll cheaper than steady: extra %v, want 0", f.extra)
	}
	if f := firstPollOf(window{samples: 10, cpu: 1}, window{}); f.extra != 1 {
		t.Fatalf("no steady window: extra %v, want all of the CPU", f.extra)
	}
}

// TestBenchAddress: a fleet far larger than the loopback ports gets
// distinct, valid addresses.
func TestBenchAddress(t *testing.T) {
	seen := map[string]bool{}
	for _, i := range []int{0, 1, 255, 256, 45535, 45536, 49999, 65535, 65536, maxBMCs - 1} {
		a := benchAddress(i)
		if seen[a] {
			t.Fatalf("address %s twice", a)
		}
		seen[a] = true
		if err := inventory.CheckAddress(a); err != nil {
			t.Fatalf("BMC %d: %v", i, err)
		}
	}
	if a := benchAddress(maxBMCs - 1); a != "198.19.255.255" {
		t.Fatalf("last address %s, want 198.19.255.255", a)
	}
	if _, err := newFleet(maxBMCs+1, nil); err == nil {
		t.Fatal("a fleet beyond 198.18.0.0/15 was made")
	}
}
