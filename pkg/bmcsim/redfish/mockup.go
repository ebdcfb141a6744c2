package redfish

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
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

// mockupBackend serves documents read from a mockup directory. Everything is
// read once at start: captures are small, requests then touch no disk, and
// ETags are computed once.
type mockupBackend struct {
	docs map[string]route
}

func (m *mockupBackend) route(p string) (route, bool) {
	rt, ok := m.docs[p]
	return rt, ok
}

// NewMockupHandler serves a directory in DMTF mockup layout, as DMTF's
// Redfish-Mockup-Creator writes it: dir/redfish/v1/index.json for the
// service root, dir/redfish/v1/Chassis/1/Thermal/index.json for
// /redfish/v1/Chassis/1/Thermal, dir/redfish/v1/$metadata/index.xml for the
// CSDL. A tree without the leading redfish directory (dir/v1/index.json) is
// accepted too. Documents are replayed as captured, GET and HEAD only, with
// the same authentication, sessions and ETags as a simulated BMC; the
// SessionService is always this handler's own, live one. Faults and $expand
// do not apply to mockups.
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
			return be.load(p, url, "application/json; charset=utf-8")
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
	if filepath.Base(filepath.Dir(v1)) != "redfish" || be.load(versions, pathVersions, "application/json; charset=utf-8") != nil {
		body := []byte(`{"v1":"/redfish/v1/"}`)
		be.docs[pathVersions] = route{raw: body, rawETag: hashETag(body), contentType: "application/json; charset=utf-8"}
	}
	return newHandler(opts.Options, opts.Username, opts.Password, opts.SessionLimit, be), nil
}

// locateMockup finds the directory holding the service root's index.json.
func locateMockup(dir string) (string, error) {
	for _, cand := range []string{filepath.Join(dir, "redfish", "v1"), filepath.Join(dir, "v1")} {
		if _, err := os.Stat(filepath.Join(cand, "index.json")); err == nil {
			return cand, nil
		}
	}
	return "", fmt.Errorf("load mockup %s: neither redfish/v1/index.json nor v1/index.json exists", dir)
}

func (m *mockupBackend) load(file, url, contentType string) error {
	body, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if strings.HasPrefix(contentType, "application/json") && !json.Valid(body) {
		return fmt.Errorf("%s: not valid JSON", file)
	}
	m.docs[url] = route{raw: body, rawETag: hashETag(body), contentType: contentType}
	return nil
}
