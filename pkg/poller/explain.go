package poller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/prometheus/prompb"

	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/pipeline"
	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// ExplainOptions tune Explain.
type ExplainOptions struct {
	// RuleFiles are the user's mapping files or directories, read before
	// the built-in rules as the gateway reads normalise.rule_files.
	RuleFiles []string
	// Format is "text" (the default), aligned for an operator, or "json".
	Format string
	// Logger receives the sources' debug messages; nil discards them.
	Logger *slog.Logger
}

// The formats of ExplainOptions.Format.
const (
	ExplainText = "text"
	ExplainJSON = "json"
)

// ExplainReport is what Explain found: one poll per protocol the BMC is
// polled over, every reading with what the gateway's normaliser makes of
// it, and every reading the source left out. It is the JSON form.
type ExplainReport struct {
	BMC           string          `json:"bmc"`
	Address       string          `json:"address"`
	Protocol      string          `json:"protocol"`
	Prefer        string          `json:"prefer,omitempty"`
	RedfishSchema string          `json:"redfish_schema,omitempty"`
	RuleFiles     []string        `json:"rule_files"`
	Polls         []ExplainedPoll `json:"polls"`
}

// ExplainedPoll is one poll of one protocol.
type ExplainedPoll struct {
	Protocol        string             `json:"protocol"`
	Up              bool               `json:"up"`
	Partial         bool               `json:"partial"`
	ErrorClass      string             `json:"error_class,omitempty"`
	Error           string             `json:"error,omitempty"`
	DurationSeconds float64            `json:"duration_seconds"`
	Info            map[string]string  `json:"info,omitempty"`
	Readings        []ExplainedReading `json:"readings"`
	SourceDrops     []SourceDrop       `json:"source_drops"`
	// LogoutError is how closing the session failed, if it did.
	LogoutError string         `json:"logout_error,omitempty"`
	Summary     ExplainSummary `json:"summary"`
}

// ExplainedReading is one raw reading and its fate in the normaliser.
type ExplainedReading struct {
	Name       string               `json:"name"`
	ID         string               `json:"id"`
	Kind       string               `json:"kind"`
	SensorType string               `json:"sensor_type,omitempty"`
	Unit       string               `json:"unit,omitempty"`
	Value      explainValue         `json:"value"`
	Context    string               `json:"context,omitempty"`
	Entity     string               `json:"entity,omitempty"`
	Parent     string               `json:"parent,omitempty"`
	Health     string               `json:"health,omitempty"`
	State      string               `json:"state,omitempty"`
	Thresholds []ExplainedThreshold `json:"thresholds,omitempty"`
	// Series, Dropped and Detail are pipeline.ReadingFate's.
	Series  []string `json:"series,omitempty"`
	Dropped string   `json:"dropped,omitempty"`
	Detail  string   `json:"detail,omitempty"`
	// PreferredFeeds are the series of Series that the BMC's preferred
	// protocol also produces: the gateway takes them from that protocol
	// while it answers (a BMC polled over both).
	PreferredFeeds []string `json:"preferred_feeds,omitempty"`
}

// ExplainedThreshold is one of a reading's thresholds, raw.
type ExplainedThreshold struct {
	Kind  string       `json:"kind"`
	Value explainValue `json:"value"`
}

// SourceDrop is a reading the source left out (sources.Drop).
type SourceDrop struct {
	Reason string `json:"reason"`
	Name   string `json:"name,omitempty"`
	ID     string `json:"id,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// ExplainSummary counts one poll's readings and their fates.
type ExplainSummary struct {
	Readings int `json:"readings"`
	// Series is the number of distinct series the readings feed.
	Series int `json:"series"`
	// Dropped counts the readings the normaliser made no series of, by
	// reason; SourceDrops the readings the source left out, by reason.
	Dropped     map[string]int `json:"dropped"`
	SourceDrops map[string]int `json:"source_drops"`
}

// explainValue is a raw value: a JSON number, or a string for NaN and the
// infinities, which JSON has no number for.
type explainValue float64

func (v explainValue) MarshalJSON() ([]byte, error) {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte(strconv.Quote(formatValue(f))), nil
	}
	return []byte(formatValue(f)), nil
}

// formatValue writes a raw value as the BMC would: 1234567 rather than
// 1.234567e+06 (energy counters), exponents only for the very large or
// small.
func formatValue(f float64) string {
	if a := math.Abs(f); a == 0 || a >= 1e-4 && a < 1e15 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// explainLogoutTimeout bounds closing the sessions, as a worker does.
const explainLogoutTimeout = 5 * time.Second

// Explain polls one BMC of the inventory once per protocol it is polled
// over and writes to w what became of each reading: the poll's result,
// each raw reading with the series the gateway's normaliser makes of it
// (built-in mapping rules and opts.RuleFiles) or why it makes none, and
// each reading the source left out. Configuration, inventory, credentials
// and sources are read and opened as a running poller does, with its
// timeouts; the sessions are closed before it returns. No credential is
// ever written.
//
// It returns an error, after writing the report, when a protocol's poll
// was not answered (a partial poll was); and before writing anything when
// the BMC is not in the inventory, or its credentials or the mapping files
// cannot be read.
func Explain(ctx context.Context, cfg *Config, id string, w io.Writer, opts ExplainOptions) error {
	switch opts.Format {
	case "":
		opts.Format = ExplainText
	case ExplainText, ExplainJSON:
	default:
		return fmt.Errorf("explain: format %q is not one of text, json", opts.Format)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	inv, creds, err := loadInventory(cfg)
	if err != nil {
		return err
	}
	b, ok := inv.Get(id)
	if !ok {
		return fmt.Errorf("bmc %q is not in the inventory (read %s)", id, strings.Join(cfg.Inventory.Files, ", "))
	}
	user, pw, err := creds.Lookup(b.Credentials)
	if err != nil {
		return fmt.Errorf("bmc %s: %w", id, err)
	}
	rules, err := pipeline.ReadRuleFiles(opts.RuleFiles...)
	if err != nil {
		return err
	}
	norm, err := pipeline.NewNormaliser(pipeline.NormaliserOptions{RuleFiles: rules, PlanCacheSize: 1})
	if err != nil {
		return err
	}

	protos := protocolsOf(*b)
	drops := map[v1.Protocol][]SourceDrop{}
	factory := sourceFactory(cfg, opts.Logger, func(p v1.Protocol, d sources.Drop) {
		drops[p] = append(drops[p], SourceDrop(d))
	})
	srcs := make([]sources.Source, 0, len(protos))
	closeAll := func() []error {
		lctx, cancel := context.WithTimeout(context.Background(), explainLogoutTimeout)
		defer cancel()
		errs := make([]error, len(srcs))
		for i, s := range srcs {
			errs[i] = s.Close(lctx)
		}
		return errs
	}
	for _, p := range protos {
		s, err := factory(*b, p, user, pw)
		if err != nil {
			closeAll()
			return fmt.Errorf("open %s source of %s: %w", protoLabel(p), id, err)
		}
		srcs = append(srcs, s)
	}

	report := ExplainReport{BMC: b.ID, Address: b.Address, Protocol: string(b.Protocol), RedfishSchema: b.RedfishSchema, RuleFiles: opts.RuleFiles}
	if b.Protocol == inventory.Both {
		report.Prefer = string(b.Prefer)
	}
	base, _ := pipeline.BaseLabels(inv, id)
	pollerID := cfg.PollerID
	if pollerID == "" {
		pollerID = "explain"
	}
	timeout := pollTimeout(cfg, time.Duration(b.Interval))
	var failed []string
	for i, p := range protos {
		snap := &v1.Snapshot{BmcId: b.ID, Address: b.Address, Protocol: p, PollerId: pollerID, Sequence: 1, ReplicationFactor: 1}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		start := time.Now()
		snap.PollStartMs = start.UnixMilli()
		err := srcs[i].Collect(pctx, snap)
		end := time.Now()
		cancel()
		snap.PollEndMs = end.UnixMilli()
		snap.Protocol = p
		if err != nil && snap.ErrorClass == "" {
			snap.ErrorClass, snap.Error = string(sources.ClassOf(err)), err.Error()
		}
		if err := ctx.Err(); err != nil {
			closeAll()
			return fmt.Errorf("explain %s: %w", id, err)
		}
		if !snap.Up {
			failed = append(failed, fmt.Sprintf("%s did not answer: %s", protoLabel(p), snap.Error))
		}
		report.Polls = append(report.Polls, explainPoll(norm, snap, base, drops[p], end.Sub(start)))
	}
	for i, err := range closeAll() {
		if err != nil {
			report.Polls[i].LogoutError = err.Error()
		}
	}
	markPreferred(&report)

	var out []byte
	if opts.Format == ExplainJSON {
		out, err = json.MarshalIndent(report, "", "  ")
		out = append(out, '\n')
		if err != nil {
			return fmt.Errorf("explain %s: encode: %w", id, err)
		}
	} else {
		out = []byte(report.text())
	}
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("explain %s: write: %w", id, err)
	}
	if len(failed) > 0 {
		return fmt.Errorf("bmc %s: %s", id, strings.Join(failed, "; "))
	}
	return nil
}

// explainPoll puts one snapshot, the normaliser's account of it and the
// source's drops together.
func explainPoll(norm *pipeline.Normaliser, snap *v1.Snapshot, base []prompb.Label, drops []SourceDrop, took time.Duration) ExplainedPoll {
	ep := ExplainedPoll{
		Protocol: protoLabel(snap.Protocol), Up: snap.Up, Partial: snap.Partial,
		ErrorClass: snap.ErrorClass, Error: snap.Error, DurationSeconds: took.Seconds(),
		Info: snap.Info, Readings: []ExplainedReading{}, SourceDrops: drops,
		Summary: ExplainSummary{Readings: len(snap.Readings), Dropped: map[string]int{}, SourceDrops: map[string]int{}},
	}
	if ep.SourceDrops == nil {
		ep.SourceDrops = []SourceDrop{}
	}
	fates := norm.Explain(snap, base)
	series := map[string]bool{}
	for i := range snap.Readings {
		r := &snap.Readings[i]
		er := ExplainedReading{
			Name: r.Name, ID: r.Id, Kind: enumName(r.Kind.String(), "KIND_"), SensorType: r.SensorType,
			Unit: r.Unit, Value: explainValue(r.Value), Context: r.Context, Parent: r.Parent,
			Health: enumName(r.Health.String(), "HEALTH_"), State: r.State,
		}
		if r.EntityId != 0 || r.EntityInstance != 0 {
			er.Entity = fmt.Sprintf("%d.%d", r.EntityId, r.EntityInstance)
		}
		for _, t := range r.Thresholds {
			er.Thresholds = append(er.Thresholds, ExplainedThreshold{Kind: enumName(t.Kind.String(), "THRESHOLD_"), Value: explainValue(t.Value)})
		}
		if i < len(fates) {
			f := fates[i]
			er.Series, er.Dropped, er.Detail = f.Series, f.Dropped, f.Detail
		}
		for _, s := range er.Series {
			series[s] = true
		}
		if er.Dropped != "" {
			ep.Summary.Dropped[er.Dropped]++
		}
		ep.Readings = append(ep.Readings, er)
	}
	ep.Summary.Series = len(series)
	for _, d := range drops {
		ep.Summary.SourceDrops[d.Reason]++
	}
	return ep
}

// markPreferred notes, for a BMC polled over both protocols, which series
// of the other protocol the preferred one produces too: the gateway feeds
// those from the preferred protocol while it answers
// (pipeline.Sources).
func markPreferred(r *ExplainReport) {
	if len(r.Polls) < 2 || r.Prefer == "" {
		return
	}
	var pref *ExplainedPoll
	for i := range r.Polls {
		if r.Polls[i].Protocol == r.Prefer {
			pref = &r.Polls[i]
		}
	}
	if pref == nil || !pref.Up {
		return
	}
	has := map[string]bool{}
	for _, er := range pref.Readings {
		for _, s := range er.Series {
			has[s] = true
		}
	}
	for i := range r.Polls {
		if &r.Polls[i] == pref {
			continue
		}
		for j := range r.Polls[i].Readings {
			er := &r.Polls[i].Readings[j]
			for _, s := range er.Series {
				if has[s] {
					er.PreferredFeeds = append(er.PreferredFeeds, s)
				}
			}
		}
	}
}

// enumName is a protobuf enum's name in lower case without its prefix:
// "temperature" for KIND_TEMPERATURE; empty for the unspecified value.
func enumName(s, prefix string) string {
	s = strings.ToLower(strings.TrimPrefix(s, prefix))
	if s == "unspecified" {
		return ""
	}
	return s
}

// text renders the report for an operator: per protocol the poll's
// result, a table of readings each followed by its series or its drop
// reason, the readings the source left out, then a summary line per
// protocol.
func (r *ExplainReport) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "BMC %s at %s, protocol %s", r.BMC, r.Address, r.Protocol)
	if r.Prefer != "" {
		fmt.Fprintf(&b, " (prefer %s)", r.Prefer)
	}
	if r.RedfishSchema != "" {
		fmt.Fprintf(&b, ", redfish_schema %s", r.RedfishSchema)
	}
	b.WriteString("\nmapping files: ")
	b.WriteString(strings.Join(append(append([]string(nil), r.RuleFiles...), "built-in"), ", "))
	b.WriteString("\n")
	for i := range r.Polls {
		r.Polls[i].text(&b, r.Prefer)
	}
	b.WriteString("\nsummary\n")
	for _, p := range r.Polls {
		fmt.Fprintf(&b, "  %s\n", p.summaryLine())
	}
	return b.String()
}

func (p *ExplainedPoll) result() string {
	switch {
	case p.Up && p.Partial:
		return "partial"
	case p.Up:
		return "up"
	}
	return "down"
}

func (p *ExplainedPoll) text(b *strings.Builder, prefer string) {
	fmt.Fprintf(b, "\n== %s: %s in %.2fs", p.Protocol, p.result(), p.DurationSeconds)
	if len(p.Info) > 0 {
		keys := make([]string, 0, len(p.Info))
		for k := range p.Info {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var kv []string
		for _, k := range keys {
			if p.Info[k] != "" {
				kv = append(kv, fmt.Sprintf("%s=%q", k, p.Info[k]))
			}
		}
		fmt.Fprintf(b, "\n   info: %s", strings.Join(kv, " "))
	}
	b.WriteString("\n")
	if p.Error != "" {
		fmt.Fprintf(b, "   error (%s): %s\n", p.ErrorClass, p.Error)
	}
	if p.LogoutError != "" {
		fmt.Fprintf(b, "   logout: %s\n", p.LogoutError)
	}
	if len(p.Readings) > 0 {
		fmt.Fprintf(b, "\n   readings (%d), each with the series the gateway makes of it or why it makes none:\n", len(p.Readings))
		rows := [][]string{{"#", "NAME", "KIND", "TYPE", "VALUE", "UNIT", "CONTEXT", "HEALTH", "STATE"}}
		for i, er := range p.Readings {
			ctx := er.Context
			if er.Entity != "" {
				ctx = strings.TrimSpace(ctx + " entity " + er.Entity)
			}
			rows = append(rows, []string{strconv.Itoa(i), er.Name, er.Kind, er.SensorType, formatValue(float64(er.Value)), er.Unit, ctx, er.Health, er.State})
		}
		wd := widths(rows)
		sub := strings.Repeat(" ", 3+wd[0]+2) // a reading's sub-lines start under its name
		b.WriteString(row("   ", rows[0], wd))
		for i, er := range p.Readings {
			b.WriteString(row("   ", rows[i+1], wd))
			line := sub + "id " + quoteEmpty(er.ID)
			if er.Parent != "" {
				line += "; parent " + er.Parent
			}
			if len(er.Thresholds) > 0 {
				var ts []string
				for _, t := range er.Thresholds {
					ts = append(ts, t.Kind+"="+formatValue(float64(t.Value)))
				}
				line += "; thresholds " + strings.Join(ts, " ")
			}
			b.WriteString(line + "\n")
			preferred := map[string]bool{}
			for _, s := range er.PreferredFeeds {
				preferred[s] = true
			}
			for j, s := range er.Series {
				lead := sub + "       "
				if j == 0 {
					lead = sub + "series "
				}
				if preferred[s] {
					s += "   (fed by " + prefer + " while it answers)"
				}
				b.WriteString(lead + s + "\n")
			}
			if er.Dropped != "" {
				fmt.Fprintf(b, "%sdropped %s: %s\n", sub, er.Dropped, er.Detail)
			} else if er.Detail != "" {
				fmt.Fprintf(b, "%swhy %s\n", sub, er.Detail)
			}
		}
	}
	if len(p.SourceDrops) > 0 {
		fmt.Fprintf(b, "\n   left out by the %s source (%d):\n", p.Protocol, len(p.SourceDrops))
		rows := [][]string{{"REASON", "NAME", "ID", "DETAIL"}}
		for _, d := range p.SourceDrops {
			rows = append(rows, []string{d.Reason, d.Name, d.ID, d.Detail})
		}
		wd := widths(rows)
		for _, r := range rows {
			b.WriteString(row("   ", r, wd))
		}
	}
}

// summaryLine is one line: result, readings, series, drops by reason.
func (p *ExplainedPoll) summaryLine() string {
	s := p.Summary
	line := fmt.Sprintf("%s: %s, %d readings, %d series", p.Protocol, p.result(), s.Readings, s.Series)
	line += "; normaliser dropped " + countsLine(s.Dropped)
	line += "; source left out " + countsLine(s.SourceDrops)
	if p.ErrorClass != "" {
		line += "; error " + p.ErrorClass
	}
	return line
}

// countsLine is "0" or "5 (absent 3, merged 2)", reasons sorted.
func countsLine(m map[string]int) string {
	total := 0
	keys := make([]string, 0, len(m))
	for k, n := range m {
		total += n
		keys = append(keys, k)
	}
	if total == 0 {
		return "0"
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// widths is the widest cell of each column, in runes.
func widths(rows [][]string) []int {
	var wd []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(wd) {
				wd = append(wd, 0)
			}
			wd[i] = max(wd[i], utf8.RuneCountInString(c))
		}
	}
	return wd
}

// row pads each cell but the last to its column's width, two spaces
// apart; trailing blanks are trimmed.
func row(indent string, cells []string, wd []int) string {
	var b strings.Builder
	b.WriteString(indent)
	for i, c := range cells {
		b.WriteString(c)
		if i < len(cells)-1 {
			b.WriteString(strings.Repeat(" ", wd[i]-utf8.RuneCountInString(c)+2))
		}
	}
	return strings.TrimRight(b.String(), " ") + "\n"
}
