package pipeline

import (
	"github.com/prometheus/prometheus/prompb"

	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/series"
)

// MissingLabel marks the series of a BMC that is not in the inventory
// (`inventory="missing"`): its data still flows, and a dashboard or alert can
// find BMCs someone forgot to register.
const MissingLabel = "inventory"

// BaseLabels returns the labels every series of a BMC carries: `bmc` and the
// inventory entry's labels, sorted. A BMC missing from the inventory gets
// `bmc` and `inventory="missing"`; found reports whether it was in the
// inventory.
func BaseLabels(inv *inventory.Inventory, bmcID string) (ls []prompb.Label, found bool) {
	e, ok := inv.Get(bmcID)
	if !ok {
		return []prompb.Label{{Name: "bmc", Value: bmcID}, {Name: MissingLabel, Value: "missing"}}, false
	}
	ls = make([]prompb.Label, 0, 1+len(e.Labels))
	ls = append(ls, prompb.Label{Name: "bmc", Value: bmcID})
	for k, v := range e.Labels {
		if v != "" {
			ls = append(ls, prompb.Label{Name: k, Value: v})
		}
	}
	series.Sort(ls)
	return ls, true
}

// Enricher holds every inventory BMC's base labels, built once per
// inventory, so enriching a snapshot is a map lookup rather than an
// allocation and a sort per snapshot and sink. It is immutable and safe for
// concurrent use; the returned slices are shared and must not be modified.
type Enricher struct {
	inv    *inventory.Inventory
	labels map[string][]prompb.Label
}

// NewEnricher indexes an inventory's base labels.
func NewEnricher(inv *inventory.Inventory) *Enricher {
	e := &Enricher{inv: inv, labels: make(map[string][]prompb.Label, inv.Len())}
	for _, b := range inv.All() {
		e.labels[b.ID], _ = BaseLabels(inv, b.ID)
	}
	return e
}

// Labels returns a BMC's base labels, as BaseLabels does.
func (e *Enricher) Labels(bmcID string) ([]prompb.Label, bool) {
	if ls, ok := e.labels[bmcID]; ok {
		return ls, true
	}
	return BaseLabels(nil, bmcID)
}

// Inventory is the inventory the Enricher was built from.
func (e *Enricher) Inventory() *inventory.Inventory { return e.inv }
