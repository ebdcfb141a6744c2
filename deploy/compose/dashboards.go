package compose

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
)

// DashboardDir is where the Grafana dashboards are, relative to this
// directory; grafana/provisioning/dashboards provisions them from there.
const DashboardDir = "grafana/dashboards"

// Dashboard is the part of a Grafana dashboard (JSON model, schemaVersion
// 39) that bmcstream checks: its identity, panels with their queries, and
// template variables.
type Dashboard struct {
	// File is the dashboard's file name in DashboardDir.
	File          string `json:"-"`
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Panels        []Panel
	Templating    struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Panel is one panel; a row's nested panels are in Panels.
type Panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *Datasource `json:"datasource"`
	Targets    []Target    `json:"targets"`
	Panels     []Panel     `json:"panels"`
}

// Datasource refers to a Grafana datasource by type and uid ("${datasource}"
// for the dashboard's datasource variable).
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is one query of a panel.
type Target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Instant    bool        `json:"instant"`
	Datasource *Datasource `json:"datasource"`
}

// Variable is a template variable. Query holds a query variable's query,
// which Grafana stores as a string or as an object with a "query" field.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	AllValue   string          `json:"allValue"`
	IncludeAll bool            `json:"includeAll"`
	Multi      bool            `json:"multi"`
	Datasource *Datasource     `json:"datasource"`
}

// QueryText returns a query variable's query, such as
// `label_values(bmc_up{site=~"$site"}, rack)`.
func (v Variable) QueryText() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var obj struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(v.Query, &obj) == nil {
		return obj.Query
	}
	return ""
}

// Query is one PromQL expression a dashboard evaluates.
type Query struct {
	Dashboard string // the dashboard's file name
	Panel     string // panel title, or "variable <name>"
	RefID     string
	// Expr is the PromQL as written, template variables included.
	Expr string
	// Instant is true for instant queries (tables, stats, bar gauges).
	Instant bool
}

func (q Query) String() string {
	return fmt.Sprintf("%s / %s / %s: %s", q.Dashboard, q.Panel, q.RefID, q.Expr)
}

// Dashboards reads every embedded dashboard, sorted by file name.
func Dashboards() ([]Dashboard, error) {
	return ReadDashboards(files, DashboardDir)
}

// ReadDashboards reads the *.json dashboards of dir in fsys.
func ReadDashboards(fsys fs.FS, dir string) ([]Dashboard, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]Dashboard, 0, len(names))
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		var d Dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", n, err)
		}
		d.File = path.Base(n)
		out = append(out, d)
	}
	return out, nil
}

// AllPanels returns the dashboard's panels, rows' nested panels included,
// in order.
func (d Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(.*?)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)

// Queries returns every PromQL expression the dashboard evaluates: each
// panel target's expr, and the series selector of each query variable
// (label_values(selector, label); query_result(expr)).
func (d Dashboard) Queries() []Query {
	var out []Query
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			if strings.TrimSpace(t.Expr) == "" {
				continue
			}
			out = append(out, Query{Dashboard: d.File, Panel: p.Title, RefID: t.RefID, Expr: t.Expr, Instant: t.Instant})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := strings.TrimSpace(v.QueryText())
		switch {
		case labelValuesRE.MatchString(q):
			out = append(out, Query{Dashboard: d.File, Panel: "variable " + v.Name, RefID: v.Name, Expr: labelValuesRE.FindStringSubmatch(q)[1], Instant: true})
		case strings.HasPrefix(q, "query_result(") && strings.HasSuffix(q, ")"):
			out = append(out, Query{Dashboard: d.File, Panel: "variable " + v.Name, RefID: v.Name, Expr: q[len("query_result(") : len(q)-1], Instant: true})
		}
	}
	return out
}

var templateVarRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}|\[\[([A-Za-z_][A-Za-z0-9_]*)\]\]|\$([A-Za-z_][A-Za-z0-9_]*)`)

// TemplateVars returns the names of the Grafana template variables expr
// uses ($site, ${site}, [[site]], and built-ins such as $__rate_interval).
func TemplateVars(expr string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range templateVarRE.FindAllStringSubmatch(expr, -1) {
		name := m[1] + m[2] + m[3]
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Expand replaces the template variables of expr by their values in vars,
// as Grafana does before sending the query; a variable vars lacks is an
// error.
func Expand(expr string, vars map[string]string) (string, error) {
	var missing []string
	out := templateVarRE.ReplaceAllStringFunc(expr, func(m string) string {
		sub := templateVarRE.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("expand %q: no value for %s", expr, strings.Join(missing, ", "))
	}
	return out, nil
}

// promqlWords are PromQL's keywords and the like: identifiers that are not
// metric names although no parenthesis follows them.
var promqlWords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"inf": true, "nan": true, "Inf": true, "NaN": true, "atan2": true,
}

// aggregations are PromQL's aggregation operators, which may take their
// grouping before their parameters.
var aggregations = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// groupingWords take a parenthesised list of label names.
var groupingWords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// MetricNames returns the metric names a PromQL expression selects, sorted
// and without repeats: the identifiers that are neither functions,
// aggregations, keywords nor label names. Template variables must have
// been expanded. It understands the PromQL bmcstream's dashboards and
// rules are written in, not every corner of the language (a selector
// written as {__name__="..."} is not seen).
func MetricNames(expr string) []string {
	seen := map[string]bool{}
	var out []string
	s := expr
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(s, i)
		case c == '{':
			i = skipUntil(s, i, '}')
		case c == '[':
			i = skipUntil(s, i, ']')
		case c == '#': // a comment runs to the end of the line
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r') {
				k++
			}
			switch {
			case groupingWords[word]:
				if k < len(s) && s[k] == '(' {
					j = skipUntil(s, k, ')')
				}
			case promqlWords[word]:
			case k < len(s) && s[k] == '(':
				// A function or an aggregation.
			case aggregations[word] && (strings.HasPrefix(s[k:], "by") || strings.HasPrefix(s[k:], "without")):
				// An aggregation with its grouping first: sum by (a) (x).
			default:
				if !seen[word] {
					seen[word] = true
					out = append(out, word)
				}
			}
			i = j
		case c >= '0' && c <= '9':
			// A number or a duration (5m, 1e3, 0x1F): skip it whole.
			for i < len(s) && (isIdentChar(s[i]) || s[i] == '.') {
				i++
			}
		default:
			i++
		}
	}
	sort.Strings(out)
	return out
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// skipString returns the index after the string literal starting at i.
func skipString(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1
		}
	}
	return len(s)
}

// skipUntil returns the index after the first end at or after i that is
// not inside a string literal.
func skipUntil(s string, i int, end byte) int {
	for j := i + 1; j < len(s); {
		switch s[j] {
		case '"', '\'', '`':
			j = skipString(s, j)
		case end:
			return j + 1
		default:
			j++
		}
	}
	return len(s)
}
