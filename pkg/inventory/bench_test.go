package inventory

import (
	"fmt"
	"strings"
	"testing"
)

// inventory20000 is a valid inventory of 20 000 BMCs written as operators
// write them: defaults, then entries of four to six keys with labels.
func inventory20000() []byte {
	var b strings.Builder
	b.WriteString("defaults:\n  protocol: redfish\n  credentials: lab\n  interval: 30s\n  labels: {site: ctc, room: hall1}\nbmcs:\n")
	for i := range 20000 {
		fmt.Fprintf(&b, "  - id: srv-%05d\n    address: 10.%d.%d.%d\n", i, i/65536, i/256%256, i%256)
		if i%3 == 0 {
			b.WriteString("    protocol: both\n    prefer: ipmi\n")
		}
		fmt.Fprintf(&b, "    labels: {row: r%d, rack: r%d-%d, position: \"%d\"}\n", i/400, i/400, i/40%10, i%40)
	}
	return []byte(b.String())
}

// BenchmarkParseInventory20000 is what checking a 20 000-BMC inventory
// costs: decoding, placing each entry's line, validating.
func BenchmarkParseInventory20000(b *testing.B) {
	doc := inventory20000()
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		inv, err := Parse(doc)
		if err != nil || inv.Len() != 20000 {
			b.Fatalf("got %d entries, %v", inv.Len(), err)
		}
	}
}

// BenchmarkParseInventory20000Invalid: the same inventory with a bad
// port in its first entry and a bad interval in its last: the cost
// of reporting problems (each placed at its node).
func BenchmarkParseInventory20000Invalid(b *testing.B) {
	doc := inventory20000()
	doc = []byte(strings.Replace(string(doc), "    labels: {row: r0, rack: r0-0, position: \"0\"}\n", "    labels: {row: r0, rack: r0-0, position: \"0\"}\n    ipmi_port: p\n", 1))
	doc = append(doc, "    interval: 1\n"...)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(doc); err == nil {
			b.Fatal("accepted")
		}
	}
}
