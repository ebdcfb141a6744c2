package redfish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bmcstream/bmcstream/pkg/secret"
	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// DefaultRequestTimeout bounds one HTTP request. iDRAC takes seconds to
// answer its Thermal and Power resources; ten seconds leaves room for that
// and still fails a wedged BMC well inside a one-minute poll.
const DefaultRequestTimeout = 10 * time.Second

// DefaultInfoInterval is how often the slow-changing system facts (model,
// serial, BIOS, power state, health, firmware) are read again. They change
// on a reboot or an operator's action, not from one poll to the next; ten
// minutes keeps them current for dashboards at a cost of one request per
// document every ten minutes.
const DefaultInfoInterval = 10 * time.Minute

// Schema chooses between the two generations of Redfish sensor resources
// where a chassis offers both: legacy (Thermal and Power) and modern (the
// Sensors collection, ThermalSubsystem, PowerSubsystem,
// EnvironmentMetrics).
type Schema string

// The schema choices. SchemaLegacy and SchemaModern are preferences, not
// requirements: a chassis offering only the other generation is read
// through that one.
const (
	// SchemaAuto reads every generation a chassis offers and merges the
	// copies of one sensor into one reading (see the package
	// documentation): nothing only one generation lists is lost, whether
	// or not the service announces $expand.
	SchemaAuto Schema = ""
	// SchemaAutoName is how configurations spell SchemaAuto.
	SchemaAutoName Schema = "auto"
	// SchemaLegacy reads Chassis/{id}/Thermal and Power only, where a
	// chassis offers them.
	SchemaLegacy Schema = "legacy"
	// SchemaModern reads the Sensors collection and the subsystems only,
	// where a chassis offers them: the Sensors collection expanded when the
	// service supports it, member by member when it does not.
	SchemaModern Schema = "modern"
)

// Options tune a Source. The zero value is the recommended configuration:
// session login, DefaultRequestTimeout, DefaultInfoInterval, automatic schema
// choice, a transport built from the Target.
type Options struct {
	// BasicAuth sends the credentials with every request instead of
	// logging in once and reusing a session token. Sessions are the default:
	// several BMCs (iDRAC among them) open and close an internal session
	// per basic-auth request, which is slower and churns their session
	// table.
	BasicAuth bool
	// RequestTimeout bounds each HTTP request; zero means
	// DefaultRequestTimeout. The deadline of Collect's context bounds the
	// whole poll.
	RequestTimeout time.Duration
	// InfoInterval is how often system facts are read again after
	// discovery; zero means DefaultInfoInterval. One document is refreshed
	// per poll, so a refresh never makes one poll much costlier.
	InfoInterval time.Duration
	// Schema chooses the sensor resources where a chassis offers both
	// generations; see Schema.
	Schema Schema
	// OnDrop, when not nil, is called synchronously from Collect for each
	// reading the BMC listed and the poll left out (sources.Drop, with the
	// reading's id in Reading.Id's form), after the poll's readings are
	// merged. It must not block.
	OnDrop func(sources.Drop)
	// Transport replaces the transport New would build from the Target
	// (see NewTransport), for tests and for callers that wrap it (to count
	// or trace requests). The Target's CAFile and InsecureSkipVerify are
	// then the transport's business.
	Transport http.RoundTripper
	// Now is the clock deciding when system facts are due and reading
	// Retry-After dates; nil means time.Now.
	Now func() time.Time
	// Logger receives the few debug messages of a session's life (login,
	// discovery, rediscovery). Nil discards them. Failures are returned,
	// never logged.
	Logger *slog.Logger
}

// Validate checks the options.
func (o Options) Validate() error {
	var errs []error
	if o.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("request_timeout: must not be negative, got %s", o.RequestTimeout))
	}
	if o.InfoInterval < 0 {
		errs = append(errs, fmt.Errorf("info_interval: must not be negative, got %s", o.InfoInterval))
	}
	switch o.Schema {
	case SchemaAuto, SchemaAutoName, SchemaLegacy, SchemaModern:
	default:
		errs = append(errs, fmt.Errorf("schema: must be %q, %q, %q or empty, got %q", SchemaAutoName, SchemaLegacy, SchemaModern, o.Schema))
	}
	return errors.Join(errs...)
}

// Stats are a Source's counters since New, for self-metrics. Every field
// only grows.
type Stats struct {
	// Requests is the number of HTTP requests sent.
	Requests uint64
	// NotModified is how many of them were answered 304 Not Modified (a
	// conditional GET whose cached readings were reused).
	NotModified uint64
	// Logins counts sessions created; Discoveries counts completed
	// discoveries of the service's resources.
	Logins      uint64
	Discoveries uint64
	// MalformedDocuments counts documents discovery read but could not
	// decode (a system, manager, thermal metrics or power supply that is
	// not a JSON object, or broken JSON). Discovery goes on without what
	// they would have told it, as it does when a read fails.
	MalformedDocuments uint64
	// Skipped counts readings left out of snapshots, by reason.
	Skipped Skipped
}

// Skipped counts readings left out of snapshots, by reason, once per poll
// that left them out.
type Skipped struct {
	// Unavailable readings belong to a sensor whose Status.State is
	// Absent, Disabled or UnavailableOffline (iLO lists empty sockets and
	// bays with a reading of 0).
	Unavailable uint64
	// NoReading readings were null or missing.
	NoReading uint64
	// NotANumber readings held something else: "N/A", an empty string, a
	// boolean, an object.
	NotANumber uint64
	// Malformed counts array members that were not JSON objects.
	Malformed uint64
	// UnsupportedLayout counts readings in resource shapes the source
	// cannot read (a sensor array that is not an array).
	UnsupportedLayout uint64
	// Merged counts copies of a reading read through a second schema and
	// merged into the first.
	Merged uint64
}

// Total is the sum of every reason.
func (k Skipped) Total() uint64 {
	return k.Unavailable + k.NoReading + k.NotANumber + k.Malformed + k.UnsupportedLayout + k.Merged
}

// dropReasons are the sources.Drop reasons, in the order counters.drops
// holds them.
var dropReasons = [...]string{
	sources.DropAbsent, sources.DropDisabled, sources.DropNull, sources.DropNotANumber,
	sources.DropMalformed, sources.DropUnsupportedLayout, sources.DropMerged,
}

// counters are Stats as atomics: Collect writes them, Stats and Dropped
// read them from another goroutine (a metrics scrape).
type counters struct {
	requests, notModified, logins, discoveries atomic.Uint64
	malformedDocs                              atomic.Uint64
	drops                                      [len(dropReasons)]atomic.Uint64
}

// drop counts one drop.
func (c *counters) drop(reason string) {
	for i, r := range dropReasons {
		if r == reason {
			c.drops[i].Add(1)
			return
		}
	}
}

func (c *counters) dropped(reason string) uint64 {
	for i, r := range dropReasons {
		if r == reason {
			return c.drops[i].Load()
		}
	}
	return 0
}

// Source is one Redfish session to one BMC. It implements sources.Source.
//
// Collect and Close are called by one goroutine at a time (the BMC's poll
// loop), so a Source sends one request at a time; Stats may be called from
// any goroutine.
type Source struct {
	target  sources.Target
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	base    string // scheme://host[:port]
	host    string // host[:port] as errors name it
	badOpts error

	client *http.Client

	// token and sessionURI are the session; token is empty when there is
	// none.
	token      secret.Secret
	sessionURI string
	// root is the last service root read; rootUUID its UUID.
	root     *rootDoc
	rootUUID string
	// disc is what discovery found; nil until discovery (and again when
	// the service changed).
	disc *discovery
	// noExpand is set once the service failed an $expand it announced.
	noExpand bool
	// cache holds, per URI (with query), the ETag and what the document
	// decoded to, for conditional GETs.
	cache map[string]*cached
	// info is the latest of each info document.
	info infoDocs
	// infoDue lists info documents to read again, one per poll; infoAt is
	// when the list was last filled.
	infoDue []string
	infoAt  time.Time

	stats counters
}

// cached is one document's last 200 answer, decoded.
type cached struct {
	etag string
	res  docResult
}

// New returns a Source for t. It does no I/O: the session is opened by the
// first Collect. Invalid options or targets are reported by Collect.
func New(t sources.Target, opts Options) *Source {
	s := &Source{target: t, opts: opts, now: opts.Now, log: opts.Logger, cache: map[string]*cached{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.opts.RequestTimeout == 0 {
		s.opts.RequestTimeout = DefaultRequestTimeout
	}
	if s.opts.InfoInterval == 0 {
		s.opts.InfoInterval = DefaultInfoInterval
	}
	scheme := t.Scheme
	if scheme == "" {
		scheme = "https"
	}
	s.host = t.Host
	if t.Port != 0 {
		s.host = net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	} else if strings.Contains(t.Host, ":") {
		s.host = "[" + t.Host + "]"
	}
	s.base = scheme + "://" + s.host
	var errs []error
	if err := opts.Validate(); err != nil {
		errs = append(errs, err)
	}
	if t.Host == "" {
		errs = append(errs, errors.New("host: must be set"))
	}
	if scheme != "https" && scheme != "http" {
		errs = append(errs, fmt.Errorf("scheme: must be https or http, got %q", scheme))
	}
	if !opts.BasicAuth && t.Username == "" {
		errs = append(errs, errors.New("username: must be set to log in"))
	}
	if err := errors.Join(errs...); err != nil {
		s.badOpts = fmt.Errorf("configure redfish source for %s: %w", s.host, err)
	}
	return s
}

// Stats returns the Source's counters.
func (s *Source) Stats() Stats {
	c := &s.stats
	return Stats{
		Requests:           c.requests.Load(),
		NotModified:        c.notModified.Load(),
		Logins:             c.logins.Load(),
		Discoveries:        c.discoveries.Load(),
		MalformedDocuments: c.malformedDocs.Load(),
		Skipped: Skipped{
			Unavailable:       c.dropped(sources.DropAbsent) + c.dropped(sources.DropDisabled),
			NoReading:         c.dropped(sources.DropNull),
			NotANumber:        c.dropped(sources.DropNotANumber),
			Malformed:         c.dropped(sources.DropMalformed),
			UnsupportedLayout: c.dropped(sources.DropUnsupportedLayout),
			Merged:            c.dropped(sources.DropMerged),
		},
	}
}

// MalformedDocuments implements sources.DocumentCounter.
func (s *Source) MalformedDocuments() uint64 { return s.stats.malformedDocs.Load() }

// Dropped implements sources.DropCounter: the readings left out of
// snapshots since New, by reason, each counted once per poll that left it
// out.
func (s *Source) Dropped() map[string]uint64 {
	out := make(map[string]uint64, len(dropReasons))
	for i, r := range dropReasons {
		if n := s.stats.drops[i].Load(); n > 0 {
			out[r] = n
		}
	}
	return out
}

// stage is how far a poll got.
type stage int

const (
	stageSession stage = iota
	stageDiscovery
	stageLeaves
)

// poll is the state of one Collect.
type poll struct {
	ctx context.Context
	// answered is set by any HTTP response: the BMC is up.
	answered bool
	// relogged is set once the poll logged in again after a 401, so it
	// does so at most once.
	relogged bool
	// rootRead is set when the poll has read the service root already.
	rootRead bool
	stage    stage
	errs     []*sources.Error
	// meta and drops go with the readings the poll read: meta[i] with
	// the i-th reading it appended.
	meta  []meta
	drops []sources.Drop
}

// fail records a classified error of the poll.
func (p *poll) fail(err error) { p.errs = append(p.errs, classify(err)) }

// classRank orders classes for a poll that met several: the one the
// poller must act on first (wait as asked, stop logging in) ranks lowest.
func classRank(c sources.Class) int {
	switch c {
	case sources.ClassRateLimited:
		return 0
	case sources.ClassSessionLimit:
		return 1
	case sources.ClassAuth:
		return 2
	case sources.ClassUnreachable:
		return 3
	case sources.ClassTimeout:
		return 4
	case sources.ClassProtocol:
		return 5
	}
	return 6
}

// err combines the poll's errors into one *sources.Error.
func (p *poll) err() *sources.Error { return combine(p.errs) }

// combine makes one *sources.Error of several: the highest-ranked class,
// the longest Retry-After, every message.
func combine(errs []*sources.Error) *sources.Error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	best := errs[0]
	var retry time.Duration
	all := make(joined, len(errs))
	for i, e := range errs {
		all[i] = e.Err
		if classRank(e.Class) < classRank(best.Class) {
			best = e
		}
		retry = max(retry, e.RetryAfter)
	}
	return &sources.Error{Class: best.Class, RetryAfter: retry, Err: all}
}

// classify returns err as a *sources.Error, ClassOf's class when it has none.
func classify(err error) *sources.Error {
	var e *sources.Error
	if errors.As(err, &e) {
		return e
	}
	return &sources.Error{Class: sources.ClassOf(err), Err: err}
}

// joined is errors.Join on one line: its message becomes a snapshot's
// error string.
type joined []error

func (j joined) Error() string {
	parts := make([]string, len(j))
	for i, e := range j {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

func (j joined) Unwrap() []error { return j }

// stopping reports whether an error ends the poll: the BMC is gone, slow,
// asking us to back off, or refusing us, and more requests would not help.
func stopping(err error) bool {
	switch sources.ClassOf(err) {
	case sources.ClassUnreachable, sources.ClassTimeout, sources.ClassAuth, sources.ClassSessionLimit, sources.ClassRateLimited:
		return true
	}
	return false
}

// Collect implements sources.Source: it logs in and discovers when needed,
// reads the sensor resources of its plan, merges the copies of one
// reading, reports what it left out to Options.OnDrop and, one document
// per poll when due, reads the system facts.
//
// Up is set when the BMC answered at all. When a request fails after the
// session and discovery succeeded, the readings read so far are kept and
// Partial is set beside the error. Info is filled whenever the poll reached
// the sensor resources.
func (s *Source) Collect(ctx context.Context, dst *v1.Snapshot) error {
	dst.Protocol = v1.Protocol_PROTOCOL_REDFISH
	dst.Up, dst.Partial, dst.Error, dst.ErrorClass = false, false, "", ""
	clear(dst.Info)
	if s.badOpts != nil {
		return sources.Fail(dst, &sources.Error{Class: sources.ClassProtocol, Err: s.badOpts})
	}
	p := &poll{ctx: ctx}
	s.collect(p, dst)
	dst.Up = p.answered
	if p.stage >= stageLeaves {
		s.fillInfo(dst)
	}
	s.report(p)
	err := p.err()
	if err == nil {
		return nil
	}
	dst.Partial = p.answered && p.stage >= stageLeaves
	return sources.Fail(dst, err)
}

// report counts the poll's drops and hands them to Options.OnDrop.
func (s *Source) report(p *poll) {
	for _, d := range p.drops {
		s.stats.drop(d.Reason)
		if s.opts.OnDrop != nil {
			s.opts.OnDrop(d)
		}
	}
}

func (s *Source) collect(p *poll, dst *v1.Snapshot) {
	if s.client == nil {
		if err := s.setupClient(); err != nil {
			p.fail(err)
			return
		}
	}
	if !s.opts.BasicAuth && s.token == "" {
		if err := s.login(p); err != nil {
			p.fail(err)
			return
		}
	}
	p.stage = stageDiscovery
	if s.disc == nil {
		if err := s.discover(p); err != nil {
			p.fail(err)
			return
		}
	}
	p.stage = stageLeaves
	d := s.disc
	start := len(dst.Readings)
	// A chassis with no sensors is no error: the poll is up with what
	// there is.
	complete := s.readLeaves(p, d, dst)
	s.merge(p, d, dst, start)
	if !complete {
		return
	}
	if err := s.refreshInfo(p); err != nil {
		p.fail(err)
		if statusCode(err) == http.StatusNotFound {
			s.invalidate()
		}
		return
	}
	if !p.answered {
		// A service with no sensor resources (and no info document due)
		// is asked for its root, so that the poll knows it is up.
		if _, err := s.readRoot(p); err != nil {
			p.fail(err)
		}
	}
}

// readLeaves reads the plan's sensor resources into dst and reports
// whether the poll read all of them.
func (s *Source) readLeaves(p *poll, d *discovery, dst *v1.Snapshot) bool {
	for i := range d.leaves {
		if p.ctx.Err() != nil {
			p.fail(s.ctxError(p.ctx, "read sensors"))
			return false
		}
		lf := &d.leaves[i]
		res, err := s.readLeaf(p, lf)
		for j := range res.meta {
			res.meta[j].chassis, res.meta[j].leaf = lf.chassis, i
		}
		dst.Readings = append(dst.Readings, res.readings...)
		p.meta = append(p.meta, res.meta...)
		p.drops = append(p.drops, res.drops...)
		if len(res.layout) > 0 {
			p.fail(&sources.Error{Class: sources.ClassDecode, Err: fmt.Errorf("read %s of %s: unsupported layout: %s",
				lf.uri, s.host, strings.Join(res.layout, "; "))})
		}
		if err != nil {
			if statusCode(err) == http.StatusNotFound && !d.pruned {
				// A link dead from the start (a chassis listing a Thermal
				// it does not serve) is the service's own inconsistency,
				// not a failure of the poll: the plan forgets it until
				// the next discovery, the poll goes on clean.
				s.log.Debug("sensor resource linked but not served; not read again", "host", s.host, "uri", lf.uri, "err", err)
				lf.dead = true
				continue
			}
			p.fail(err)
			switch {
			case stopping(err):
				return false
			case statusCode(err) == http.StatusNotFound:
				// Resources moved (a firmware update): find them again.
				s.log.Debug("sensor resource gone; discovering again", "host", s.host, "uri", lf.uri)
				s.invalidate()
			case lf.query != "" && expandFailed(err):
				s.log.Debug("service refused $expand; discovering again without it", "host", s.host, "uri", lf.uri, "err", err)
				s.noExpand = true
				s.invalidate()
			}
		}
		if s.disc != d {
			// The service changed under the poll (a 404, a new UUID after
			// logging in again): what is left of the plan is stale.
			return false
		}
	}
	return true
}

// merge merges the poll's readings (dst.Readings from start) so that
// each physical quantity yields one, and adds a drop for each copy merged
// away. After the first poll of a plan, it drops from the plan the
// resources linked but not served (404), and the excerpt resources whose
// every reading was a copy of another resource's (a Fan whose speed the
// legacy Thermal lists too): reading them again would only be merged away
// again.
func (s *Source) merge(p *poll, d *discovery, dst *v1.Snapshot, start int) {
	rs := dst.Readings[start:]
	merged := make([]mergeRule, len(rs))
	kept, drops := mergeReadings(rs, p.meta, merged)
	dst.Readings = dst.Readings[:start+len(kept)]
	p.drops = append(p.drops, drops...)
	if s.log.Enabled(p.ctx, slog.LevelDebug) {
		k := 0
		for _, r := range merged {
			if r != ruleNone {
				d := drops[k]
				k++
				s.log.Debug("merged a copy", "host", s.host, "id", d.ID, "into", d.Detail, "rule", r.String())
			}
		}
	}
	if d.pruned || s.disc != d || p.ctx.Err() != nil {
		return
	}
	d.pruned = true
	read := make([]int, len(d.leaves))
	copies := make([]int, len(d.leaves))
	for i, m := range p.meta {
		read[m.leaf]++
		if merged[i] != ruleNone {
			copies[m.leaf]++
		}
	}
	leaves := d.leaves[:0]
	for i, lf := range d.leaves {
		if lf.dead {
			continue
		}
		if lf.kind.excerpts() && read[i] > 0 && copies[i] == read[i] {
			s.log.Debug("excerpts repeat other readings; not read again", "host", s.host, "uri", lf.uri)
			continue
		}
		leaves = append(leaves, lf)
	}
	d.leaves = leaves
}

// ctxError is the error of a poll whose context ended between requests.
func (s *Source) ctxError(ctx context.Context, action string) error {
	return &sources.Error{Class: sources.ClassTimeout, Err: fmt.Errorf("%s of %s: %w", action, s.host, context.Cause(ctx))}
}

// Close implements sources.Source: it logs the session out and closes idle
// connections. It is safe to call more than once and before Collect; a
// later Collect logs in again.
func (s *Source) Close(ctx context.Context) error {
	err := s.logout(ctx)
	if s.client != nil {
		s.client.CloseIdleConnections()
	}
	return err
}

// readLeaf reads one sensor resource of the plan.
func (s *Source) readLeaf(p *poll, lf *leaf) (docResult, error) {
	cov := s.disc.cov
	switch lf.kind {
	case leafThermal:
		return s.getDoc(p, lf.uri, "", func(b []byte) (docResult, error) { return decodeThermal(b, lf.uri) })
	case leafPower:
		return s.getDoc(p, lf.uri, "", func(b []byte) (docResult, error) { return decodePower(b, lf.uri) })
	case leafPSUMetrics:
		return s.getDoc(p, lf.uri, "", func(b []byte) (docResult, error) {
			return decodePSUMetrics(b, lf.uri, lf.label, lf.parent, cov)
		})
	case leafEnvMetrics:
		return s.getDoc(p, lf.uri, "", func(b []byte) (docResult, error) { return decodeEnvMetrics(b, lf.uri, cov) })
	case leafThermalMetrics:
		return s.getDoc(p, lf.uri, "", func(b []byte) (docResult, error) { return decodeThermalMetrics(b, lf.uri, cov) })
	case leafFans:
		return s.readCollection(p, lf,
			func(b []byte) (docResult, error) { return decodeFans(b, lf.uri, cov) },
			func(b []byte, uri string) (docResult, error) { return decodeFan(b, uri, cov) })
	case leafSensors:
		cl := s.disc.claims
		res, err := s.readCollection(p, lf,
			func(b []byte) (docResult, error) { return decodeSensors(b, lf.uri, cl) },
			func(b []byte, uri string) (docResult, error) { return decodeSensor(b, uri, cl) })
		if !lf.chassisPowerKnown {
			guessChassisPower(res.readings)
		}
		return res, err
	}
	return docResult{}, nil
}

// readCollection reads a collection: one request when expanded, one more
// per member when not. A member that fails costs its reading only (and
// marks the poll partial) unless the failure ends the poll.
func (s *Source) readCollection(p *poll, lf *leaf, coll func([]byte) (docResult, error), member func([]byte, string) (docResult, error)) (docResult, error) {
	res, err := s.getDoc(p, lf.uri, lf.query, coll)
	if err != nil {
		return res, err
	}
	var errs []*sources.Error
	for _, m := range res.pending {
		if p.ctx.Err() != nil {
			errs = append(errs, classify(s.ctxError(p.ctx, "read sensors")))
			break
		}
		uri := canonicalURI(m)
		r, err := s.getDoc(p, uri, "", func(b []byte) (docResult, error) { return member(b, uri) })
		res.readings = append(res.readings, r.readings...)
		res.meta = append(res.meta, r.meta...)
		res.drops = append(res.drops, r.drops...)
		res.layout = append(res.layout, r.layout...)
		if err != nil {
			errs = append(errs, classify(err))
			if stopping(err) {
				break
			}
		}
	}
	res.pending = nil
	if e := combine(errs); e != nil {
		return res, e
	}
	return res, nil
}

// guessChassisPower marks the chassis input power among a Sensors
// collection's readings when no resource pointed at it (no
// EnvironmentMetrics.PowerWatts): among the power sensors no PSU claimed,
// the only one whose PhysicalContext is Chassis, else the only one whose
// context is unset, Chassis or SystemBoard and whose name says total,
// system, chassis or server ("total_power", "Sys Power", "System Board Pwr
// Consumption"). Anything less certain stays a plain power sensor: a wrong
// chassis power is worse than none.
func guessChassisPower(rs []v1.Reading) {
	var chassis, named []int
	for i := range rs {
		r := &rs[i]
		if r.Kind != v1.Kind_KIND_POWER || r.SensorType != "Power" {
			continue
		}
		switch strings.ToLower(r.Context) {
		case "chassis":
			chassis = append(chassis, i)
			fallthrough
		case "", "systemboard":
			if chassisPowerName(r.Name) {
				named = append(named, i)
			}
		}
	}
	switch {
	case len(chassis) == 1:
		rs[chassis[0]].SensorType = sensorTypeChassisPower
	case len(chassis) == 0 && len(named) == 1:
		rs[named[0]].SensorType = sensorTypeChassisPower
	}
}

// chassisPowerName reports whether a sensor name reads as the whole
// server's power ("total_power", "Sys Power", "System Board Pwr
// Consumption").
func chassisPowerName(name string) bool {
	words := strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return r == ' ' || r == '_' || r == '-' || r == '.'
	})
	for _, w := range words {
		switch w {
		case "total", "sys", "system", "chassis", "server", "platform", "node", "consumption":
			return true
		}
	}
	return false
}

// getDoc GETs a document conditionally and decodes it, reusing the cached
// result on 304 Not Modified. A 304 means the BMC's representation, and so
// the readings, are unchanged now; they are reported at this poll's time
// (a reading's timestamp is the snapshot's).
func (s *Source) getDoc(p *poll, uri, query string, decode func([]byte) (docResult, error)) (docResult, error) {
	key := uri
	if query != "" {
		key += "?" + query
	}
	c := s.cache[key]
	etag := ""
	if c != nil {
		etag = c.etag
	}
	resp, err := s.get(p, uri, query, etag)
	if err != nil {
		return docResult{}, err
	}
	if resp.notModified && c != nil {
		return c.res.clone(), nil
	}
	res, err := decode(resp.body)
	if err != nil {
		delete(s.cache, key)
		return docResult{}, &sources.Error{Class: sources.ClassDecode, Err: fmt.Errorf("decode %s of %s: %w", uri, s.host, err)}
	}
	if resp.etag != "" {
		s.cache[key] = &cached{etag: resp.etag, res: res.clone()}
	} else {
		delete(s.cache, key)
	}
	return res, nil
}

// clone copies a result deeply enough that a caller appending to or
// editing its readings (or their thresholds) leaves the original intact.
func (r docResult) clone() docResult {
	out := docResult{
		meta: slices.Clone(r.meta), drops: slices.Clone(r.drops),
		layout: slices.Clone(r.layout), pending: slices.Clone(r.pending),
	}
	out.readings = slices.Clone(r.readings)
	for i := range out.readings {
		out.readings[i].Thresholds = slices.Clone(out.readings[i].Thresholds)
	}
	return out
}
