package corpus

import (
	"sync"

	"github.com/bmcstream/bmcstream/pkg/sources"
	"github.com/bmcstream/bmcstream/pkg/sources/redfish"
)

// dropLog collects the readings a source reported leaving out of a poll.
type dropLog struct {
	mu    sync.Mutex
	drops []sources.Drop
}

func (l *dropLog) add(d sources.Drop) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drops = append(l.drops, d)
}

// take returns the drops reported since the last take.
func (l *dropLog) take() []sources.Drop {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.drops
	l.drops = nil
	return out
}

// sourceOptions are the options the corpus reads captures with: the
// source's drops (redfish.Options.OnDrop, docs/metrics.md) routed to log.
func sourceOptions(log *dropLog) redfish.Options {
	return redfish.Options{OnDrop: log.add}
}
