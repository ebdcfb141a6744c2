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
