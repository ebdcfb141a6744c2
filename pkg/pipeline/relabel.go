package pipeline

import (
	"errors"
	"fmt"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/prompb"

	"github.com/bmcstream/bmcstream/internal/yamlx"
	"github.com/bmcstream/bmcstream/pkg/series"
)

// DefaultRelabelCacheSize is how many series a Relabeler remembers in each
// of its two cache generations. An entry costs about 40 bytes of map; a
// series relabelling changed also holds its output series (made once,
// compact labels), while an unchanged one is its input series, which the
// Normaliser's series table keeps anyway.
// 1<<20 series per generation cover what the Normaliser's default plan
// cache covered (16 000 BMCs of about 60 series) for about 45 MB of map per
// generation, plus some 200 bytes per changed 10-label series. A series
// forgotten costs one relabel run (about 2 µs and 7 allocations) at its
// next sample, never a wrong result.
const DefaultRelabelCacheSize = 1 << 20

// RelabelNameValidation is the label name validation scheme relabel configs
// are validated and run with: UTF-8, as in Prometheus 3. Configs parsed from
// YAML leave the scheme unset (the field has no YAML key), and the relabel
// package panics on an unset scheme, so NewRelabeler sets it.
const RelabelNameValidation = model.UTF8Validation

// A Relabeler applies Prometheus relabel_configs (the semantics of
// metric_relabel_configs and write_relabel_configs) to samples: it is the
// gateway's optional relabel stage.
//
// Relabelling depends only on a series' labels, so a Relabeler remembers the
// outcome per input series, keyed by its Hash and checked by pointer (then
// label equality): a series seen before costs a map lookup, and its output
// *series.Series is the same every time. The cache has two
// generations of at most DefaultRelabelCacheSize series each; a series not
// seen for two generations is forgotten, so label churn does not pin memory.
//
// As with Prometheus' metric_relabel_configs, rules that make two series
// identical (dropping the only label that told two sensors apart) make
// duplicate samples, which receivers reject; Apply does not merge them.
//
// A Relabeler is owned by one goroutine; it is not safe for concurrent use.
// The configs it was built from are only read, so several Relabelers (one
// per worker) may share them.
type Relabeler struct {
	cfgs      []*relabel.Config
	cur, prev map[uint64]relabelEntry
	cacheSize int

	sb labels.ScratchBuilder
	lb *labels.Builder
}

// relabelEntry is the remembered outcome of relabelling one series.
type relabelEntry struct {
	in  *series.Series // the input, to tell hash collisions apart
	out *series.Series // nil when the series is dropped
}

// NewRelabeler validates cfgs and returns a Relabeler that applies them in
// order. It copies each config before validating it, so cfgs are left as
// given. No configs make a Relabeler that passes every sample through.
func NewRelabeler(cfgs []*relabel.Config) (*Relabeler, error) {
	own := make([]*relabel.Config, 0, len(cfgs))
	for i, c := range cfgs {
		if c == nil {
			return nil, fmt.Errorf("validate relabel config %d: config is empty", i)
		}
		cc := *c
		if err := validateRelabelConfig(&cc); err != nil {
			return nil, fmt.Errorf("validate relabel config %d: %w", i, err)
		}
		own = append(own, &cc)
	}
	return &Relabeler{
		cfgs:      own,
		cur:       make(map[uint64]relabelEntry),
		prev:      make(map[uint64]relabelEntry),
		cacheSize: DefaultRelabelCacheSize,
		sb:        labels.NewScratchBuilder(16),
		lb:        labels.NewBuilder(labels.EmptyLabels()),
	}, nil
}

// validateRelabelConfig adds to relabel.Config.Validate the checks whose
// failure would make the relabel package panic at run time: an unknown
// action (only YAML decoding checks it) and a missing regex (only YAML
// decoding supplies the default).
func validateRelabelConfig(c *relabel.Config) error {
	switch c.Action {
	case relabel.Replace, relabel.Keep, relabel.Drop, relabel.KeepEqual, relabel.DropEqual,
		relabel.HashMod, relabel.LabelMap, relabel.LabelDrop, relabel.LabelKeep,
		relabel.Lowercase, relabel.Uppercase:
	case "":
		return errors.New("relabel action cannot be empty")
	default:
		return fmt.Errorf("unknown relabel action %q", c.Action)
	}
	if c.Regex.Regexp == nil {
		return fmt.Errorf("relabel configuration for %s action requires a regex", c.Action)
	}
	return c.Validate(RelabelNameValidation)
}

// ParseRelabelYAML decodes a YAML list of relabel configs, written as in a
// Prometheus metric_relabel_configs section, strictly (an unknown key is an
// error naming its line), and validates each config.
func ParseRelabelYAML(b []byte) ([]*relabel.Config, error) {
	var cfgs []*relabel.Config
	if err := yamlx.UnmarshalStrict(b, &cfgs); err != nil {
		return nil, fmt.Errorf("parse relabel configs: %w", err)
	}
	for i, c := range cfgs {
		if c == nil {
			return nil, fmt.Errorf("validate relabel config %d: config is empty", i)
		}
		if err := validateRelabelConfig(c); err != nil {
			return nil, fmt.Errorf("validate relabel config %d: %w", i, err)
		}
	}
	return cfgs, nil
}

// Apply appends to dst the samples that survive relabelling, with their
// relabelled series, and returns dst. Dropped samples are omitted, as are
// samples whose labels relabelling left without a metric name (no receiver
// would take them). dst may be samples[:0] to relabel in place.
//
// Output series are made anew (Slot -1) when relabelling changed the labels
// and are otherwise the input series; either way they are shared with later
// calls for the same series and must not be modified. Input series are kept
// (they are immutable once handed on, see series.Sample). A series' Hash is
// only a cache key here: a wrong one costs a relabel run, never a wrong
// result.
func (r *Relabeler) Apply(dst, samples []series.Sample) []series.Sample {
	if len(r.cfgs) == 0 {
		return append(dst, samples...)
	}
	for i := range samples {
		s := samples[i]
		e, ok := r.lookup(s.Series)
		if !ok {
			e = r.relabel(s.Series)
			r.store(s.Series.Hash, e)
		}
		if e.out == nil {
			continue
		}
		dst = append(dst, series.Sample{Series: e.out, T: s.T, V: s.V})
	}
	return dst
}

func (r *Relabeler) lookup(in *series.Series) (relabelEntry, bool) {
	h := in.Hash
	if e, ok := r.cur[h]; ok && sameSeries(e.in, in) {
		return e, true
	}
	if e, ok := r.prev[h]; ok && sameSeries(e.in, in) {
		r.store(h, e) // used again: promote it to the current generation
		return e, true
	}
	return relabelEntry{}, false
}

// sameSeries reports whether two series are one: the same pointer, or the
// same labels.
func sameSeries(a, b *series.Series) bool {
	return a == b || a.Hash == b.Hash && a.Labels.Equal(b.Labels)
}

// store keeps e in the current generation; a full generation becomes the
// previous one, and the previous one is dropped.
func (r *Relabeler) store(h uint64, e relabelEntry) {
	if _, ok := r.cur[h]; !ok && len(r.cur) >= r.cacheSize {
		r.prev, r.cur = r.cur, make(map[uint64]relabelEntry, len(r.cur))
	}
	r.cur[h] = e
	delete(r.prev, h)
}

// relabel runs the configs over one series' labels.
func (r *Relabeler) relabel(in *series.Series) relabelEntry {
	r.sb.Reset()
	in.Labels.Range(func(name, value string) { r.sb.Add(name, value) })
	r.sb.Sort()
	r.lb.Reset(r.sb.Labels())
	if !relabel.ProcessBuilder(r.lb, r.cfgs...) {
		return relabelEntry{in: in}
	}
	out := r.lb.Labels()
	if out.Get(model.MetricNameLabel) == "" {
		return relabelEntry{in: in}
	}
	ls := make([]prompb.Label, 0, out.Len())
	out.Range(func(l labels.Label) {
		ls = append(ls, prompb.Label{Name: l.Name, Value: l.Value})
	})
	if in.Labels.EqualProm(ls) {
		return relabelEntry{in: in, out: in}
	}
	return relabelEntry{in: in, out: series.New(ls)}
}
