package poller

import (
	"time"

	"github.com/bmcstream/bmcstream/internal/ratelog"
)

// pollState is what the last poll of one BMC over one protocol said, for
// logging changes: the poller logs a BMC that stops answering, one whose
// failure changes class, and one that answers again, once each, not every
// failed poll.
type pollState struct {
	known bool   // a poll has completed
	down  bool   // it failed (a partial poll is up)
	class string // the failure's class when down
}

// Defaults of the state-change log's rate limit: ten lines a second name
// the BMCs of a small incident one by one; a fleet-wide one (a switch, a
// power feed, a firmware rollout) logs ten lines and then one summary a
// second with how many it left out, while
// bmcstream_poller_state_changes_not_logged_total counts them.
const (
	stateLogMax = 10
	stateLogPer = time.Second
)

func newStateLog(now func() time.Time) *ratelog.Burst {
	return &ratelog.Burst{Max: stateLogMax, Per: stateLogPer, Now: now}
}

// logChange records the result of a poll of one BMC over one protocol and
// logs it if the state changed: up → down (with the error's class and
// text), a change of class while down, down → up. A first poll that
// succeeds is not a change. Called from the worker's goroutine.
func (p *Poller) logChange(bmc string, ps *protoSource, failed bool, class, msg string) {
	prev := ps.state
	ps.state = pollState{known: true, down: failed}
	if failed {
		ps.state.class = class
	}
	var change string
	switch {
	case failed && !prev.down:
		change = "down"
	case failed && prev.class != class:
		change = "class"
	case !failed && prev.down:
		change = "up"
	default:
		return
	}
	ok, suppressed := p.stateLog.Allow()
	if suppressed > 0 {
		p.logSuppressed(suppressed)
	}
	if !ok {
		p.metrics.stateLogsSuppressed.Inc()
		return
	}
	proto := protoLabel(ps.proto)
	switch change {
	case "down":
		p.logger.Warn("BMC not answering", "bmc", bmc, "protocol", proto, "class", class, "err", msg)
	case "class":
		p.logger.Warn("BMC still not answering, failing differently", "bmc", bmc, "protocol", proto, "class", class, "previous_class", prev.class, "err", msg)
	case "up":
		p.logger.Info("BMC answering again", "bmc", bmc, "protocol", proto, "previous_class", prev.class)
	}
}

// flushStateLog logs the summary of state changes left out by the rate
// limit once their window has ended, when no later change did it.
func (p *Poller) flushStateLog() {
	if n := p.stateLog.Flush(); n > 0 {
		p.logSuppressed(n)
	}
}

func (p *Poller) logSuppressed(n int) {
	p.logger.Warn("BMC state changes not logged: too many at once (counted in bmcstream_poller_state_changes_not_logged_total)", "not_logged", n)
}
