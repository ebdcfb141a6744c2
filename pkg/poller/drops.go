package poller

import (
	"github.com/bmcstream/bmcstream/pkg/sources"
)

// dropReasons are the reasons a source leaves a reading out
// (sources.Drop*): their series of bmcstream_poller_readings_dropped_total
// exist from the start, at zero, so a rate over them is defined before the
// first drop.
var dropReasons = []string{
	sources.DropAbsent, sources.DropDisabled, sources.DropNull, sources.DropNotANumber,
	sources.DropMalformed, sources.DropUnsupportedLayout, sources.DropMerged,
}

// countDrops adds to the poller's readings-dropped counter what the source
// counted since the last call: its DropCounter totals only grow over the
// source's life, and a source closed or replaced (a new worker) keeps what
// it added, so the poller's counter never goes down. A source that does not
// count drops adds nothing. Called by the worker's goroutine, the only one
// using the source.
func (ps *protoSource) countDrops(m *metrics) {
	if mc, ok := ps.src.(sources.DocumentCounter); ok {
		n := mc.MalformedDocuments()
		if n < ps.malformed { // the source started counting afresh
			ps.malformed = 0
		}
		m.malformedDocuments.Add(float64(n - ps.malformed))
		ps.malformed = n
	}
	dc, ok := ps.src.(sources.DropCounter)
	if !ok {
		return
	}
	now := dc.Dropped()
	if ps.drops == nil {
		ps.drops = make(map[string]uint64, len(now))
	}
	for reason, n := range now {
		last := ps.drops[reason]
		if n < last {
			// The source started counting afresh (its own restart):
			// all it has now is new.
			last = 0
		}
		if n > last {
			m.readingsDropped.WithLabelValues(reason).Add(float64(n - last))
		}
		ps.drops[reason] = n
	}
}
