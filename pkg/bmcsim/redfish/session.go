package redfish

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"
)

// session is one Redfish login.
type session struct {
	id       string
	token    string
	user     string
	created  time.Time
	lastUsed time.Time
}

// sessionStore holds one BMC's sessions. Expiry is lazy: a session idle for
// longer than the timeout is dropped when anything next looks at the store,
// so a simulator of ten thousand BMCs runs no timer per BMC.
type sessionStore struct {
	limit   int
	timeout time.Duration

	mu      sync.Mutex
	byID    map[string]*session
	byToken map[string]*session
	nextID  uint64
}

// errLimit is returned by create when the BMC holds its maximum of sessions.
type errLimit struct{ limit int }

func (e errLimit) Error() string {
	return fmt.Sprintf("create session: the maximum number of user sessions (%d) is reached", e.limit)
}

// sweepLocked drops sessions idle past the timeout at now.
func (s *sessionStore) sweepLocked(now time.Time) {
	for id, ss := range s.byID {
		if now.Sub(ss.lastUsed) > s.timeout {
			delete(s.byID, id)
			delete(s.byToken, ss.token)
		}
	}
}

// create logs user in at now.
func (s *sessionStore) create(user string, now time.Time) (*session, error) {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("create session token: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	if len(s.byID) >= s.limit {
		return nil, errLimit{s.limit}
	}
	if s.byID == nil {
		s.byID = map[string]*session{}
		s.byToken = map[string]*session{}
	}
	s.nextID++
	ss := &session{
		id:       strconv.FormatUint(s.nextID, 10),
		token:    hex.EncodeToString(raw[:]),
		user:     user,
		created:  now,
		lastUsed: now,
	}
	s.byID[ss.id] = ss
	s.byToken[ss.token] = ss
	return ss, nil
}

// touch finds the live session holding token, marks it used at now and
// returns a copy; ok is false for an unknown or expired token.
func (s *sessionStore) touch(token string, now time.Time) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byToken[token]
	if !ok {
		return session{}, false
	}
	if now.Sub(ss.lastUsed) > s.timeout {
		delete(s.byID, ss.id)
		delete(s.byToken, ss.token)
		return session{}, false
	}
	ss.lastUsed = now
	return *ss, true
}

// get returns a copy of the live session id.
func (s *sessionStore) get(id string, now time.Time) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	ss, ok := s.byID[id]
	if !ok {
		return session{}, false
	}
	return *ss, true
}

// remove logs session id out; it reports whether the session existed.
func (s *sessionStore) remove(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	ss, ok := s.byID[id]
	if !ok {
		return false
	}
	delete(s.byID, id)
	delete(s.byToken, ss.token)
	return true
}

// list returns copies of the live sessions, oldest first.
func (s *sessionStore) list(now time.Time) []session {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	out := make([]session, 0, len(s.byID))
	for _, ss := range s.byID {
		out = append(out, *ss)
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.ParseUint(out[i].id, 10, 64) // ids are the simulator's own decimal counters
		b, _ := strconv.ParseUint(out[j].id, 10, 64) // as above
		return a < b
	})
	return out
}

// count is the number of live sessions at now.
func (s *sessionStore) count(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	return len(s.byID)
}
