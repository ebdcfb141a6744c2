package redfish

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// MockupOptions configure a handler replaying a mockup.
type MockupOptions struct {
	Options
	// Username and Password are the credentials the replayed BMC accepts
	// (basic auth and session login).
	Username string
	Password string
	// SessionLimit is how many sessions it holds before answering 503;
	// zero means 8.
	SessionLimit int
	// OnMalformed, when set, is called once at load for every document
	// of the mockup that is not valid JSON, with its URI. Such a document
	// is served as captured all the same (see NewMockupHandler).
	OnMalformed func(uri string)
}

// Validate checks the options.
func (o MockupOptions) Validate() error {
	var errs []error
	if o.Username == "" {
		errs = append(errs, errors.New("username: must be set"))
	}
	if o.Password == "" {
		errs = append(errs, errors.New("password: must be set"))
	}
	if o.SessionLimit < 0 {
		errs = append(errs, fmt.Errorf("session_limit: must not be negative, got %d", o.SessionLimit))
	}
	return errors.Join(errs...)
}

const contentTypeJSON = "application/json; charset=utf-8"

// mockupBackend serves documents read from a mockup directory. Everything is
// read once at start: captures are small, requests then touch no disk, and
// ETags are computed once.
type mockupBackend struct {
	docs map[string]route
	// malformed lists the URIs of documents that are not valid JSON.
	malformed []string
}

func (m *mockupBackend) route(p string) (route, bool) {
	rt, ok := m.docs[p]
	return rt, ok
}

// NewMockupHandler serves a directory in DMTF mockup layout, as DMTF's
// Redfish-Mockup-Creator writes it: dir/redfish/v1/index.json for the
// service root, dir/redfish/v1/Chassis/1/Thermal/index.json for
// /redfish/v1/Chassis/1/Thermal, dir/redfish/v1/$metadata/index.xml for the
// CSDL. Two other layouts are accepted: a tree without the leading redfish
// directory (dir/v1/index.json), and the flat one of DMTF's published
// mockups, where dir itself is /redfish/v1 (dir/index.json is the service
// root, dir/Chassis/index.json the Chassis collection).
//
// Documents are replayed as captured, GET and HEAD only, with the same
// authentication, sessions and ETags (and 304 Not Modified) as a simulated
// BMC; the SessionService is always this handler's own, live one. Faults do
// not apply to mockups.
//
// A document that is not valid JSON is served byte for byte all the same,
// as the BMC it was captured from served it: a client must cope with it.
// Each is logged at warning level when the handler is made and reported to
// MockupOptions.OnMalformed.
//
// $expand=. and $expand=* (with or without $levels; one level is what this
// service expands) inline a collection's members whose documents the mockup
// holds, so a client's expanded and member-by-member readings can both be
// exercised on one capture. $expand=~ asks only for the hyperlinks under
// Links, which a collection's Members are not and which this service does
// not expand: the collection comes back as it is. A collection is served from its decoded form (same members in the
// same order, compact), expanded or not; a member the mockup lacks stays a
// link.
func NewMockupHandler(dir string, opts MockupOptions) (*Handler, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("mockup %s: %w", dir, err)
	}
	v1, err := locateMockup(dir)
	if err != nil {
		return nil, err
	}
	be := &mockupBackend{docs: map[string]route{}}
	err = filepath.WalkDir(v1, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(v1, filepath.Dir(p))
		if err != nil {
			return err
		}
		url := path.Clean(pathServiceRoot + "/" + filepath.ToSlash(rel))
		switch d.Name() {
		case "index.json":
			return be.load(p, url, contentTypeJSON)
		case "index.xml":
			return be.load(p, url, "application/xml")
		}
		return nil // headers.json and anything else a capture holds
	})
	if err != nil {
		return nil, fmt.Errorf("load mockup %s: %w", dir, err)
	}
	if _, ok := be.docs[pathServiceRoot]; !ok {
		return nil, fmt.Errorf("load mockup %s: no service root (v1/index.json)", dir)
	}
	versions := filepath.Join(filepath.Dir(v1), "index.json")
	if filepath.Base(filepath.Dir(v1)) != "redfish" || be.load(versions, pathVersions, contentTypeJSON) != nil {
		body := []byte(`{"v1":"/redfish/v1/"}`)
		be.docs[pathVersions] = route{raw: body, rawETag: hashETag(body), contentType: contentTypeJSON}
	}
	be.expandable()
	h := newHandler(opts.Options, opts.Username, opts.Password, opts.SessionLimit, be)
	for _, uri := range be.malformed {
		h.logger.Warn("mockup document is not valid JSON; serving it as captured", "dir", dir, "uri", uri)
		if opts.OnMalformed != nil {
			opts.OnMalformed(uri)
		}
	}
	return h, nil
}

// locateMockup finds the directory holding the service root's index.json:
// dir/redfish/v1, dir/v1, or dir itself.
func locateMockup(dir string) (string, error) {
	for _, cand := range []string{filepath.Join(dir, "redfish", "v1"), filepath.Join(dir, "v1"), dir} {
		if _, err := os.Stat(filepath.Join(cand, "index.json")); err == nil {
			return cand, nil
		}
	}
	return "", fmt.Errorf("load mockup %s: none of redfish/v1/index.json, v1/index.json and index.json exists", dir)
}

func (m *mockupBackend) load(file, url, contentType string) error {
	body, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if strings.HasPrefix(contentType, "application/json") && !json.Valid(body) {
		m.malformed = append(m.malformed, url)
	}
	m.docs[url] = route{raw: body, rawETag: hashETag(body), contentType: contentType}
	return nil
}

// expandable turns every collection (a valid JSON object with a Members
// array) into a route that renders it, with its members inlined when the
// request asks for $expand. It runs once every document is loaded, so a
// member's document is found wherever it sits in the tree.
func (m *mockupBackend) expandable() {
	decoded := map[string]obj{}
	decode := func(uri string) (obj, bool) {
		if o, ok := decoded[uri]; ok {
			return o, o != nil
		}
		rt, ok := m.docs[uri]
		if !ok || rt.render != nil || !strings.HasPrefix(rt.contentType, "application/json") || !json.Valid(rt.raw) {
			return nil, false
		}
		o, err := decodeObj(rt.raw)
		if err != nil {
			decoded[uri] = nil // not an object
			return nil, false
		}
		decoded[uri] = o
		return o, true
	}
	for uri, rt := range m.docs {
		if !bytes.Contains(rt.raw, []byte(`"Members"`)) {
			continue
		}
		plain, ok := decode(uri)
		if !ok {
			continue
		}
		i := plain.index("Members")
		if i < 0 {
			continue
		}
		members, ok := plain[i].val.([]any)
		if !ok {
			continue
		}
		inlined := make([]any, len(members))
		for j, mem := range members {
			inlined[j] = mem
			if target, ok := linkTarget(mem); ok {
				if doc, ok := decode(target); ok {
					inlined[j] = doc
				}
			}
		}
		expanded := append(obj(nil), plain...)
		expanded[i] = member{key: "Members", val: inlined}
		m.docs[uri] = route{render: func(rc *renderCtx) obj {
			if rc.expand {
				return expanded
			}
			return plain
		}}
	}
}

// linkTarget returns the cleaned path of a bare reference object
// ({"@odata.id": "..."} and nothing else).
func linkTarget(v any) (string, bool) {
	o, ok := v.(obj)
	if !ok || len(o) != 1 || o[0].key != "@odata.id" {
		return "", false
	}
	s, ok := o[0].val.(string)
	if !ok || !strings.HasPrefix(s, "/") || strings.ContainsAny(s, "#?") {
		return "", false
	}
	return cleanPath(s), true
}

// index is the position of key in o, or -1.
func (o obj) index(key string) int {
	for i, m := range o {
		if m.key == key {
			return i
		}
	}
	return -1
}

// decodeObj decodes a JSON object into an obj, keeping its members in
// document order (a map would not), so a re-encoded document reads as the
// captured one did.
func decodeObj(b []byte) (obj, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the document")
	}
	o, ok := v.(obj)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return o, nil
}

// decodeValue reads one JSON value as the types appendValue encodes: obj,
// []any, string, int (integers that fit), float64, bool or nil. Nesting is
// bounded by the decoder's input, which a mockup's documents keep small.
func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := obj{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := kt.(string)
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				o = o.add(key, v)
			}
			_, err := dec.Token() // '}'
			return o, err
		case '[':
			a := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token() // ']'
			return a, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		if !strings.ContainsAny(string(t), ".eE") {
			if i, err := strconv.Atoi(string(t)); err == nil {
				return i, nil
			}
		}
		return strconv.ParseFloat(string(t), 64)
	default:
		return t, nil // string, bool or nil
	}
}
