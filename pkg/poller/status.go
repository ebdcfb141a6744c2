package poller

import (
	_ "embed" // the status page's template
	"encoding/json"
	"html/template"
	"net/http"
)

// statusTemplate is the HTML of /status. html/template escapes every
// value: an error message quotes what a BMC sent.
//
//go:embed status.html
var statusTemplate string

// StatusView is what /status shows: the poller, the membership it shards
// with, and every owned BMC's last result.
type StatusView struct {
	Poller  string   `json:"poller"`
	Members []string `json:"members"`
	BMCs    []Status `json:"bmcs"`
}

// StatusView is the poller's status page now.
func (p *Poller) StatusView() StatusView {
	return StatusView{Poller: p.ID(), Members: p.Members(), BMCs: p.Statuses()}
}

// NewStatusHandler serves the status page of what view returns at each
// request: JSON when asked for (?format=json or Accept:
// application/json), else HTML.
func NewStatusHandler(view func() StatusView) http.Handler {
	// The template is part of the binary: it parses, or no test passes.
	page := template.Must(template.New("status").Parse(statusTemplate))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := view()
		if r.URL.Query().Get("format") == "json" || r.Header.Get("Accept") == "application/json" {
			w.Header().Set("Content-Type", "application/json")
			// An error here is the client gone mid-answer: nothing to
			// tell it.
			_ = json.NewEncoder(w).Encode(st)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// As above; a template error cannot happen with these fields
		// (TestStatusShowsErrorEscaped renders every one).
		_ = page.Execute(w, st)
	})
}
