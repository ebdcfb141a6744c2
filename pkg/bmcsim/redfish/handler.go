package redfish

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
)

// DefaultSessionTimeout is how long a session may sit idle before the BMC
// forgets it. Thirty minutes is the SessionService default of iDRAC, iLO and
// OpenBMC's bmcweb, so a poller tuned against bmcsim behaves the same against
// real hardware.
const DefaultSessionTimeout = 30 * time.Minute

// maxRequestBody bounds a login request; a BMC has little memory and real
// ones reject far smaller bodies than this.
const maxRequestBody = 64 << 10

// Paths every Redfish service answers at the same place.
const (
	pathVersions       = "/redfish"
	pathServiceRoot    = "/redfish/v1"
	pathOData          = "/redfish/v1/odata"
	pathMetadata       = "/redfish/v1/$metadata"
	pathChassis        = "/redfish/v1/Chassis"
	pathSystems        = "/redfish/v1/Systems"
	pathManagers       = "/redfish/v1/Managers"
	pathSessionService = "/redfish/v1/SessionService"
	pathSessions       = "/redfish/v1/SessionService/Sessions"
)

// Options tune a Handler. The zero value is ready to use.
type Options struct {
	// Now is the handler's clock: sensor readings, session expiry and
	// timestamps all read it, so tests freeze or advance time instead of
	// sleeping. Nil means time.Now.
	Now func() time.Time
	// SessionTimeout is how long a session may sit idle before a request
	// with its token is refused with 401. Zero or negative means
	// DefaultSessionTimeout.
	SessionTimeout time.Duration
	// Seed seeds the random source that draws per-request latency, so a run
	// with the same seed and the same request order sees the same latencies.
	Seed uint64
	// IgnoreSensorLatency answers sensor resources without the
	// personality's sensor_latency_ms (iDRAC's 1.5 s), for tests that read
	// many BMCs and do not study that latency.
	IgnoreSensorLatency bool
	// Logger receives the handler's few diagnostics, at debug level (a
	// connection that could not be hijacked for the Down fault, say). Nil
	// discards them.
	Logger *slog.Logger
}

// Handler is one virtual BMC's Redfish service, an http.Handler. It holds the
// BMC's sessions and reads the BMC's faults on every request; it starts no
// goroutine of its own. Serve it over HTTP/1.1, as NewServer and
// CA.TLSConfig do: the Down and BlackHole faults close connections by
// hijacking them, which HTTP/2 does not allow.
//
// A Handler is safe for concurrent use. Close releases requests it holds
// (black-holed or sleeping) so a server shuts down promptly.
type Handler struct {
	now           func() time.Time
	logger        *slog.Logger
	backend       backend
	user          string
	password      string
	sensorLatency time.Duration
	// faults and latency are nil for mockups, which replay captures as they
	// are.
	faults  func() model.Faults
	latency func(*rand.Rand) time.Duration

	sessions sessionStore

	rngMu sync.Mutex
	rng   *rand.Rand

	done      chan struct{}
	closeOnce sync.Once
}

// backend knows the resources of one service: a model.BMC rendered live, or
// a mockup directory replayed. The handler around it does everything common
// to both: faults, authentication, sessions, ETags and errors.
type backend interface {
	// route finds the resource at a cleaned path (no trailing slash).
	route(path string) (route, bool)
}

// route is one resource a backend serves.
type route struct {
	// render builds the document; nil when raw holds it.
	render func(rc *renderCtx) obj
	// raw is a stored document with its precomputed ETag and content type
	// (mockups, $metadata).
	raw         []byte
	rawETag     string
	contentType string
	// sensor marks a sensor resource (Thermal, Power, the subsystems and
	// the Sensors collection with everything beneath them): the
	// MalformedJSON and WrongTypes faults apply and the body carries its
	// own "@odata.etag".
	sensor bool
	// slow marks the resources a slow BMC takes its sensor latency on.
	slow bool
}

// renderCtx is what a document is rendered from: one instant, the faults that
// change its shape, and the BMC's readings at that instant, computed at most
// once per request however many documents ($expand) use them.
type renderCtx struct {
	t          time.Time
	wrongTypes bool
	expand     bool
	// inline is set for members rendered inside an expanded collection,
	// which carry no "@odata.etag" of their own.
	inline bool
	rs     []model.Reading
}

// reading is a numeric reading as served: the value, or "N/A" under the
// WrongTypes fault, as BMCs print for a sensor they cannot read.
func (rc *renderCtx) reading(v float64) any {
	if rc.wrongTypes {
		return "N/A"
	}
	return v
}

// intReading is a reading the schema types as an integer (a legacy fan's
// Reading), or the same plus a half under the WrongTypes fault: the
// fractional value a strict integer decoder rejects.
func (rc *renderCtx) intReading(v float64) any {
	if rc.wrongTypes {
		return math.Trunc(v) + 0.5
	}
	return int(math.Round(v))
}

// NewHandler returns the Redfish service of b. Its credentials are b's
// Username and Password, its session limit the personality's
// redfish.session_limit. The personality must not change while the handler
// serves (personalities are shared by every BMC of a vendor).
func NewHandler(b *model.BMC, opts Options) *Handler {
	h := newHandler(opts, b.Username, b.Password, b.Personality.Redfish.SessionLimit, newModelBackend(b))
	h.faults = b.Faults
	h.latency = b.Latency
	if !opts.IgnoreSensorLatency {
		h.sensorLatency = time.Duration(b.Personality.Redfish.SensorLatencyMs) * time.Millisecond
	}
	return h
}

func newHandler(opts Options, user, password string, sessionLimit int, be backend) *Handler {
	h := &Handler{
		now:      opts.Now,
		logger:   opts.Logger,
		backend:  be,
		user:     user,
		password: password,
		sessions: sessionStore{limit: sessionLimit, timeout: opts.SessionTimeout},
		rng:      rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		done:     make(chan struct{}),
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.sessions.timeout <= 0 {
		h.sessions.timeout = DefaultSessionTimeout
	}
	if h.sessions.limit <= 0 {
		h.sessions.limit = 8
	}
	return h
}

// SessionCount is the number of live (logged in, not expired) sessions, so
// tests can assert a client logs out and leaks none.
func (h *Handler) SessionCount() int { return h.sessions.count(h.now()) }

// Close releases every request the handler holds (black-holed ones, ones
// sleeping out a latency) by closing their connections; a later request
// that would wait is dropped at once the same way, others are still
// answered (http.Server.Shutdown stops those). Close is idempotent, safe at
// any time, and always returns nil; the error is there for io.Closer.
func (h *Handler) Close() error {
	h.closeOnce.Do(func() { close(h.done) })
	return nil
}

// ServeHTTP answers one Redfish request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var f model.Faults
	if h.faults != nil {
		f = h.faults()
	}
	ctx := r.Context()
	switch {
	case f.Down:
		h.abort(w)
		return
	case f.BlackHole:
		h.wait(ctx, -1)
		h.abort(w)
		return
	}
	if h.latency != nil {
		h.rngMu.Lock()
		d := h.latency(h.rng)
		h.rngMu.Unlock()
		if !h.wait(ctx, d) {
			h.abort(w)
			return
		}
	}

	p := cleanPath(r.URL.Path)
	if f.HTTPStatus != 0 && p != pathVersions && p != pathServiceRoot {
		if f.RetryAfterSeconds > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfterSeconds))
		}
		h.writeError(w, r, errUnavailable(f.HTTPStatus, f.RetryAfterSeconds))
		return
	}

	if p == pathSessionService || p == pathSessions || strings.HasPrefix(p, pathSessions+"/") {
		h.serveSessions(w, r, p)
		return
	}
	if !isPublic(p) {
		if _, ok := h.authenticate(r); !ok {
			h.writeError(w, r, errNoValidSession())
			return
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.writeError(w, r, errMethodNotAllowed(r.Method))
		return
	}
	rt, ok := h.backend.route(p)
	if !ok {
		h.writeError(w, r, errNotFound(r.URL.Path))
		return
	}
	if rt.slow && h.sensorLatency > 0 && !h.wait(ctx, h.sensorLatency) {
		h.abort(w)
		return
	}
	if rt.render == nil {
		etag := rt.rawETag
		if etag == "" {
			etag = hashETag(rt.raw)
		}
		h.writeDoc(w, r, http.StatusOK, rt.raw, etag, rt.contentType)
		return
	}
	rc := &renderCtx{t: h.now(), expand: wantsExpand(r), wrongTypes: rt.sensor && f.WrongTypes}
	body, etag := encode(rt.render(rc))
	if rt.sensor && f.MalformedJSON {
		// Cut mid-document, as a BMC whose web server gives up on a slow
		// sensor read does: the status and headers look fine, the JSON
		// does not parse. The ETag is the cut body's, so a client holding
		// the whole document's ETag is not told "not modified".
		body = body[:len(body)/2]
		etag = hashETag(body)
	}
	h.writeDoc(w, r, http.StatusOK, body, etag, "application/json; charset=utf-8")
}

// isPublic reports whether a path is readable without credentials, as the
// Redfish Specification requires of the service root, the version object and
// the OData documents.
func isPublic(p string) bool {
	switch p {
	case pathVersions, pathServiceRoot, pathOData, pathMetadata:
		return true
	}
	return false
}

func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	return path.Clean(p)
}

// wantsExpand reports whether the request asks for a collection's members
// inline: $expand=. or $expand=* (with or without $levels; one level is all
// this service expands). $expand=~ expands only hyperlinks under Links, and
// a collection's Members are not there.
func wantsExpand(r *http.Request) bool {
	if !strings.Contains(r.URL.RawQuery, "expand") {
		return false
	}
	v := r.URL.Query().Get("$expand")
	if i := strings.IndexByte(v, '('); i >= 0 {
		v = v[:i]
	}
	return v == "." || v == "*"
}

// caller is who a request authenticated as.
type caller struct {
	basic     bool
	sessionID string
}

// authenticate checks X-Auth-Token first, as BMCs do: a request with a stale
// token is refused even when it also carries valid basic credentials.
func (h *Handler) authenticate(r *http.Request) (caller, bool) {
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		ss, ok := h.sessions.touch(tok, h.now())
		return caller{sessionID: ss.id}, ok
	}
	if u, p, ok := r.BasicAuth(); ok && h.credentialsMatch(u, p) {
		return caller{basic: true}, true
	}
	return caller{}, false
}

func (h *Handler) credentialsMatch(user, password string) bool {
	u := subtle.ConstantTimeCompare([]byte(user), []byte(h.user))
	p := subtle.ConstantTimeCompare([]byte(password), []byte(h.password))
	return u&p == 1
}

// serveSessions answers the SessionService, its Sessions collection (GET,
// and POST to log in) and each session (GET, and DELETE to log out).
func (h *Handler) serveSessions(w http.ResponseWriter, r *http.Request, p string) {
	if p == pathSessions && r.Method == http.MethodPost {
		h.login(w, r)
		return
	}
	who, ok := h.authenticate(r)
	if !ok {
		h.writeError(w, r, errNoValidSession())
		return
	}
	now := h.now()
	switch {
	case p == pathSessionService:
		if !h.allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		h.writeObj(w, r, sessionServiceDoc(h.sessions.timeout))
	case p == pathSessions:
		if !h.allow(w, r, http.MethodGet, http.MethodHead, http.MethodPost) {
			return
		}
		sessions := h.sessions.list(now)
		members := make([]any, len(sessions))
		for i, ss := range sessions {
			members[i] = link(pathSessions + "/" + ss.id)
		}
		h.writeObj(w, r, obj{}.
			add("@odata.id", pathSessions).
			add("@odata.type", "#SessionCollection.SessionCollection").
			add("Name", "Session Collection").
			add("Members", members).
			add("Members@odata.count", len(members)))
	default:
		id := strings.TrimPrefix(p, pathSessions+"/")
		if strings.Contains(id, "/") {
			h.writeError(w, r, errNotFound(r.URL.Path))
			return
		}
		if !h.allow(w, r, http.MethodGet, http.MethodHead, http.MethodDelete) {
			return
		}
		ss, ok := h.sessions.get(id, now)
		if !ok {
			h.writeError(w, r, errNotFound(r.URL.Path))
			return
		}
		if r.Method != http.MethodDelete {
			h.writeObj(w, r, sessionDoc(ss))
			return
		}
		// A session may log itself out; basic-auth callers act as the
		// administrator and may end any session. Another session's token
		// may not.
		if !who.basic && who.sessionID != id {
			h.writeError(w, r, errInsufficientPrivilege())
			return
		}
		if !h.sessions.remove(id, now) {
			h.writeError(w, r, errNotFound(r.URL.Path))
			return
		}
		w.Header().Set("OData-Version", "4.0")
		w.WriteHeader(http.StatusNoContent)
	}
}

// allow answers 405 unless the request's method is one of methods.
func (h *Handler) allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	h.writeError(w, r, errMethodNotAllowed(r.Method))
	return false
}

// login creates a session: 201 with X-Auth-Token and Location, the way
// every Redfish client (gofish's CreateSession included) expects.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UserName *string
		Password *string
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil || json.Unmarshal(body, &req) != nil {
		h.writeError(w, r, errMalformedJSON())
		return
	}
	switch {
	case req.UserName == nil:
		h.writeError(w, r, errPropertyMissing("UserName"))
		return
	case req.Password == nil:
		h.writeError(w, r, errPropertyMissing("Password"))
		return
	case !h.credentialsMatch(*req.UserName, *req.Password):
		h.writeError(w, r, errLoginFailed(pathSessions))
		return
	}
	ss, err := h.sessions.create(*req.UserName, h.now())
	if err != nil {
		var lim errLimit
		if errors.As(err, &lim) {
			h.writeError(w, r, errSessionLimit(lim.limit))
			return
		}
		h.logger.Debug("create redfish session", "err", err)
		h.writeError(w, r, errUnavailable(http.StatusInternalServerError, 0))
		return
	}
	w.Header().Set("X-Auth-Token", ss.token)
	w.Header().Set("Location", pathSessions+"/"+ss.id)
	body, etag := encode(sessionDoc(*ss))
	h.writeDoc(w, r, http.StatusCreated, body, etag, "application/json; charset=utf-8")
}

func sessionServiceDoc(timeout time.Duration) obj {
	return obj{}.
		add("@odata.id", pathSessionService).
		add("@odata.type", "#SessionService.v1_1_8.SessionService").
		add("Id", "SessionService").
		add("Name", "Session Service").
		add("Description", "Session Service").
		add("ServiceEnabled", true).
		add("SessionTimeout", int(timeout/time.Second)).
		add("Sessions", link(pathSessions)).
		add("Status", obj{}.add("State", "Enabled").add("Health", "OK"))
}

func sessionDoc(ss session) obj {
	return obj{}.
		add("@odata.id", pathSessions+"/"+ss.id).
		add("@odata.type", "#Session.v1_6_0.Session").
		add("Id", ss.id).
		add("Name", "User Session").
		add("Description", "Manager User Session").
		add("UserName", ss.user).
		add("SessionType", "Redfish").
		add("CreatedTime", ss.created.UTC().Format(time.RFC3339))
}

// wait sleeps d (forever when d is negative) unless the request ends or the
// handler closes first; it reports whether the full time passed.
func (h *Handler) wait(ctx context.Context, d time.Duration) bool {
	if d == 0 {
		return true
	}
	var expired <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-expired:
		return true
	case <-ctx.Done():
	case <-h.done:
	}
	return false
}

// abort closes the request's connection without an answer, as a BMC that
// died does. Where the connection cannot be hijacked (HTTP/2), the nearest
// honest answer is a 503 that closes the connection.
func (h *Handler) abort(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h.logger.Debug("hijack connection to drop it", "err", err)
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if err := conn.Close(); err != nil {
		h.logger.Debug("close hijacked connection", "err", err)
	}
}

// encode renders a document and its strong ETag, a hash of the bytes. A
// document carrying an etagSlot gets the same ETag written into its
// "@odata.etag" (the hash covers the placeholder, so one pass suffices).
func encode(o obj) (body []byte, etag string) {
	body = o.appendJSON(make([]byte, 0, 2048))
	etag = hashETag(body)
	if i := bytes.Index(body, []byte(etagMember)); i >= 0 {
		// Skip the key and the opening `"\"` of the placeholder.
		i += len(etagMember) - len(etagPlaceholder) + 3
		copy(body[i:i+16], etag[1:17])
	}
	return body, etag
}

func hashETag(b []byte) string {
	h := fnv.New64a()
	_, _ = h.Write(b)
	var out [18]byte
	out[0], out[17] = '"', '"'
	sum := h.Sum64()
	for i := 16; i >= 1; i-- {
		out[i] = hexDigits[sum&0xF]
		sum >>= 4
	}
	return string(out[:])
}

// etagMatches implements If-None-Match's weak comparison: a list of
// entity tags, or "*".
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, c := range strings.Split(header, ",") {
		c = strings.TrimSpace(c)
		if c == "*" || strings.TrimPrefix(c, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

func (h *Handler) writeObj(w http.ResponseWriter, r *http.Request, o obj) {
	body, etag := encode(o)
	h.writeDoc(w, r, http.StatusOK, body, etag, "application/json; charset=utf-8")
}

// writeDoc writes a document, or 304 Not Modified (with the ETag and no
// body) when the client's If-None-Match already holds it.
func (h *Handler) writeDoc(w http.ResponseWriter, r *http.Request, status int, body []byte, etag, contentType string) {
	hdr := w.Header()
	hdr.Set("OData-Version", "4.0")
	hdr.Set("Cache-Control", "no-cache")
	if etag != "" {
		hdr.Set("ETag", etag)
		if status == http.StatusOK && etagMatches(r.Header.Get("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	hdr.Set("Content-Type", contentType)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := w.Write(body); err != nil {
		h.logger.Debug("write redfish response", "err", err)
	}
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, e redfishError) {
	body := e.body().appendJSON(nil)
	hdr := w.Header()
	hdr.Set("OData-Version", "4.0")
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	if e.status == http.StatusUnauthorized {
		hdr.Set("WWW-Authenticate", `Basic realm="Redfish"`)
	}
	w.WriteHeader(e.status)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := w.Write(body); err != nil {
		h.logger.Debug("write redfish error", "err", err)
	}
}
