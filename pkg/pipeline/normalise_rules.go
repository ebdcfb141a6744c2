package pipeline

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/bmcstream/bmcstream/internal/yamlx"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// builtinRules holds the mapping files shipped with bmcstream, read in
// lexical order after the user's. A read-only table.
//
//go:embed mappings/*.yml
var builtinRules embed.FS

// RuleFile is one mapping file: YAML in the format of the built-in files
// under pkg/pipeline/mappings (see docs/metrics.md). Name is used in error
// messages only.
type RuleFile struct {
	Name string
	Data []byte
}

// BuiltinRuleFiles returns the mapping files bmcstream ships with, in the
// order they are read. They are a good starting point for one's own.
func BuiltinRuleFiles() ([]RuleFile, error) {
	ents, err := fs.ReadDir(builtinRules, "mappings")
	if err != nil {
		return nil, fmt.Errorf("read built-in mappings: %w", err)
	}
	out := make([]RuleFile, 0, len(ents))
	for _, e := range ents {
		b, err := fs.ReadFile(builtinRules, "mappings/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("read built-in mapping %s: %w", e.Name(), err)
		}
		out = append(out, RuleFile{Name: "builtin/" + e.Name(), Data: b})
	}
	return out, nil
}

// ReadRuleFiles reads mapping files for NewNormaliser. A path naming a
// directory stands for the *.yml and *.yaml files in it, in lexical order.
func ReadRuleFiles(paths ...string) ([]RuleFile, error) {
	var out []RuleFile
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read mapping file: %w", err)
		}
		files := []string{p}
		if st.IsDir() {
			ents, err := os.ReadDir(p)
			if err != nil {
				return nil, fmt.Errorf("read mapping directory: %w", err)
			}
			files = files[:0]
			for _, e := range ents {
				if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yml" || ext == ".yaml") {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("read mapping file: %w", err)
			}
			out = append(out, RuleFile{Name: f, Data: b})
		}
	}
	return out, nil
}

// ruleFile is the YAML format of a mapping file. Every section is
// optional; files are merged in order (see parseRules).
type ruleFile struct {
	Units         []unitSpec         `yaml:"units"`
	Kinds         []kindSpec         `yaml:"kinds"`
	KindNames     []kindNameSpec     `yaml:"kind_names"`
	Contexts      contextsSpec       `yaml:"contexts"`
	NamePrefixes  []string           `yaml:"name_prefixes"`
	ChassisFaults []chassisFaultSpec `yaml:"chassis_faults"`
	Rules         []ruleSpec         `yaml:"rules"`
}

type unitSpec struct {
	Aliases  []string `yaml:"aliases"`
	Kind     string   `yaml:"kind"`
	Base     string   `yaml:"base"`
	Offset   float64  `yaml:"offset"`
	Multiply *float64 `yaml:"multiply"`
	Divide   *float64 `yaml:"divide"`
}

type kindSpec struct {
	Kind        string   `yaml:"kind"`
	DefaultUnit string   `yaml:"default_unit"`
	SensorTypes []string `yaml:"sensor_types"`
}

type kindNameSpec struct {
	Name string `yaml:"name"`
	Kind string `yaml:"kind"`
}

type contextsSpec struct {
	Physical []physicalSpec `yaml:"physical"`
	Entities []entitySpec   `yaml:"entities"`
	Names    []nameCtxSpec  `yaml:"names"`
}

type physicalSpec struct {
	PhysicalContext string `yaml:"physical_context"`
	Context         string `yaml:"context"`
	Weak            bool   `yaml:"weak"`
}

type entitySpec struct {
	Entity  int    `yaml:"entity"`
	Context string `yaml:"context"`
	Weak    bool   `yaml:"weak"`
}

type nameCtxSpec struct {
	Name    string `yaml:"name"`
	Context string `yaml:"context"`
}

type chassisFaultSpec struct {
	Info string `yaml:"info"`
	Kind string `yaml:"kind"`
}

type ruleSpec struct {
	Match matchSpec `yaml:"match"`
	Set   setSpec   `yaml:"set"`
}

type matchSpec struct {
	Vendor           string   `yaml:"vendor"`
	Protocol         string   `yaml:"protocol"`
	Kinds            []string `yaml:"kinds"`
	SensorTypes      []string `yaml:"sensor_types"`
	PhysicalContexts []string `yaml:"physical_contexts"`
	Entities         []int    `yaml:"entities"`
	Name             string   `yaml:"name"`
	Words            string   `yaml:"words"`
}

type setSpec struct {
	Class                 string   `yaml:"class"`
	Context               string   `yaml:"context"`
	Sensor                string   `yaml:"sensor"`
	IndexBase             *int     `yaml:"index_base"`
	Multiply              *float64 `yaml:"multiply"`
	IgnorePhysicalContext *bool    `yaml:"ignore_physical_context"`
	Priority              *int     `yaml:"priority"`
	Drop                  *bool    `yaml:"drop"`
	StatusSignal          *bool    `yaml:"status_signal"`
}

// unitDef is a raw unit: its kind (zero when the sensor type decides) and
// how its values become base units.
type unitDef struct {
	alias  string // as first written, for messages
	kind   v1.Kind
	base   base
	offset float64
	mul    float64
	div    float64
}

// placeRef is a context with its strength.
type placeRef struct {
	place place
	weak  bool
	ok    bool
}

type placePattern struct {
	re    *regexp.Regexp
	place place
}

type kindPattern struct {
	re   *regexp.Regexp
	kind v1.Kind
}

type chassisFault struct {
	info, kind string
}

// rule is a compiled ruleSpec.
type rule struct {
	where string // file and index, for messages

	vendor      *regexp.Regexp
	protocol    v1.Protocol
	kinds       []v1.Kind
	sensorTypes []string // lower case
	physical    []string // lower case
	entities    []uint32
	name        *regexp.Regexp
	words       *regexp.Regexp // on the words of the canonical name

	// decision holds what the rule sets, each with whether it does.
	decision
}

// ruleSet is every mapping file merged: immutable once built.
type ruleSet struct {
	units        map[string]*unitDef // by lower-case alias
	kindDefaults [len(kindNames)]*unitDef
	sensorTypes  map[string]v1.Kind // by lower-case sensor type
	kindNames    []kindPattern
	physical     map[string]placeRef // by lower-case PhysicalContext
	entities     [256]placeRef
	placeNames   []placePattern
	prefixes     []*regexp.Regexp
	faults       []chassisFault
	rules        []*rule

	// names interns metric names: one string per (class, base) and per
	// threshold, shared by every plan.
	names [numClasses][numBases]*seriesNames

	// memo remembers what the rules make of a sensor name (see nameInfo).
	memo nameMemo
}

// seriesNames are the metric names of one class in one base unit.
type seriesNames struct {
	value      string
	thresholds [numThresholdKinds]string
}

// parseRules decodes and validates files, in order, into one rule set.
// Where two files define the same unit alias, sensor type, kind default,
// physical context, entity or chassis fault, the earlier wins; name
// patterns, name prefixes and rules are concatenated.
func parseRules(files []RuleFile) (*ruleSet, error) {
	b := &ruleSetBuilder{
		rs: &ruleSet{
			units:       map[string]*unitDef{},
			sensorTypes: map[string]v1.Kind{},
			physical:    map[string]placeRef{},
		},
		seenFault: map[string]bool{},
	}
	for _, f := range files {
		b.addFile(f)
	}
	b.resolveDefaults()
	if err := errors.Join(b.errs...); err != nil {
		return nil, err
	}
	b.rs.internNames()
	return b.rs, nil
}

// ruleSetBuilder is parseRules' state while it reads the files in order.
type ruleSetBuilder struct {
	rs        *ruleSet
	errs      []error
	seenFault map[string]bool // chassis fault info keys, across files
	// defaults are the kinds' default units, resolved once every file's
	// units are known: a file may name a unit a later file defines.
	defaults []pendingDefault
}

type pendingDefault struct {
	file  RuleFile
	kind  v1.Kind
	alias string
}

// addFile decodes one file and merges its sections into the set. local
// holds what this file defined, per section (by a prefix of the key), to
// report a key listed twice in one file.
func (b *ruleSetBuilder) addFile(f RuleFile) {
	var rf ruleFile
	if err := yamlx.UnmarshalStrict(f.Data, &rf); err != nil {
		located := yamlx.LocateErrors(f.Data, err)
		if j, ok := located.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				b.errs = append(b.errs, fmt.Errorf("read mapping file %s: %w", f.Name, e))
			}
		} else {
			b.errs = append(b.errs, fmt.Errorf("read mapping file %s: %w", f.Name, located))
		}
		return
	}
	fe := &fileErrs{file: f}
	local := map[string]bool{}
	b.addUnits(fe, local, rf.Units)
	b.addKinds(fe, local, rf.Kinds)
	b.addKindNames(fe, rf.KindNames)
	b.addPhysical(fe, local, rf.Contexts.Physical)
	b.addEntities(fe, local, rf.Contexts.Entities)
	b.addPlaceNames(fe, rf.Contexts.Names)
	b.addPrefixes(fe, rf.NamePrefixes)
	b.addChassisFaults(fe, rf.ChassisFaults)
	b.addRules(fe, rf.Rules)
	b.errs = append(b.errs, fe.errs...)
}

func (b *ruleSetBuilder) addUnits(fe *fileErrs, local map[string]bool, units []unitSpec) {
	for i, u := range units {
		at := fmt.Sprintf("units[%d]", i)
		d := &unitDef{mul: 1, div: 1, offset: u.Offset}
		if u.Kind != "" {
			k, ok := kindByName(u.Kind)
			if !ok {
				fe.add(at, u.Kind, "kind %q is not one of %s", u.Kind, strings.Join(nonEmpty(kindNames[:]), ", "))
			}
			d.kind = k
		}
		bs, ok := baseByName(u.Base)
		if !ok {
			fe.add(at, u.Base, "base %q is not one of %s", u.Base, strings.Join(nonEmpty(baseNames[:]), ", "))
		}
		d.base = bs
		if u.Multiply != nil {
			d.mul = *u.Multiply
		}
		if u.Divide != nil {
			d.div = *u.Divide
		}
		if d.mul == 0 || d.div == 0 || !finite(d.mul) || !finite(d.div) || !finite(d.offset) {
			fe.add(at, "", "multiply and divide must be finite and non-zero, offset finite")
		}
		if len(u.Aliases) == 0 {
			fe.add(at, "", "a unit needs aliases")
		}
		for _, a := range u.Aliases {
			key := strings.ToLower(strings.TrimSpace(a))
			if key == "" {
				fe.add(at, "", "an empty alias: a reading without a unit takes its kind's default_unit")
				continue
			}
			if local["u/"+key] {
				fe.add(at, a, "alias %q is defined twice in this file", a)
			}
			local["u/"+key] = true
			if _, ok := b.rs.units[key]; !ok {
				dd := *d
				dd.alias = a
				b.rs.units[key] = &dd
			}
		}
	}
}

func (b *ruleSetBuilder) addKinds(fe *fileErrs, local map[string]bool, kinds []kindSpec) {
	for i, k := range kinds {
		at := fmt.Sprintf("kinds[%d]", i)
		kind, ok := kindByName(k.Kind)
		if !ok {
			fe.add(at, k.Kind, "kind %q is not one of %s", k.Kind, strings.Join(nonEmpty(kindNames[:]), ", "))
			continue
		}
		if k.DefaultUnit != "" {
			b.defaults = append(b.defaults, pendingDefault{fe.file, kind, k.DefaultUnit})
		}
		for _, st := range k.SensorTypes {
			key := strings.ToLower(strings.TrimSpace(st))
			if key == "" {
				fe.add(at, "", "an empty sensor type")
				continue
			}
			if local["t/"+key] {
				fe.add(at, st, "sensor type %q is listed twice in this file", st)
			}
			local["t/"+key] = true
			if _, ok := b.rs.sensorTypes[key]; !ok {
				b.rs.sensorTypes[key] = kind
			}
		}
	}
}

func (b *ruleSetBuilder) addKindNames(fe *fileErrs, kns []kindNameSpec) {
	for i, kn := range kns {
		at := fmt.Sprintf("kind_names[%d]", i)
		re := fe.regexp(at, kn.Name)
		kind, ok := kindByName(kn.Kind)
		if !ok {
			fe.add(at, kn.Kind, "kind %q is not one of %s", kn.Kind, strings.Join(nonEmpty(kindNames[:]), ", "))
		}
		if re != nil && ok {
			b.rs.kindNames = append(b.rs.kindNames, kindPattern{re, kind})
		}
	}
}

func (b *ruleSetBuilder) addPhysical(fe *fileErrs, local map[string]bool, physical []physicalSpec) {
	for i, p := range physical {
		at := fmt.Sprintf("contexts.physical[%d]", i)
		pl, ok := fe.place(at, p.Context)
		key := strings.ToLower(strings.TrimSpace(p.PhysicalContext))
		if key == "" {
			fe.add(at, "", "physical_context is empty")
			continue
		}
		if local["p/"+key] {
			fe.add(at, p.PhysicalContext, "physical context %q is listed twice in this file", p.PhysicalContext)
		}
		local["p/"+key] = true
		if _, seen := b.rs.physical[key]; !seen && ok {
			b.rs.physical[key] = placeRef{place: pl, weak: p.Weak, ok: true}
		}
	}
}

func (b *ruleSetBuilder) addEntities(fe *fileErrs, local map[string]bool, entities []entitySpec) {
	for i, e := range entities {
		at := fmt.Sprintf("contexts.entities[%d]", i)
		pl, ok := fe.place(at, e.Context)
		if e.Entity <= 0 || e.Entity > 255 {
			fe.add(at, "", "entity %d is not an IPMI entity ID (1 to 255)", e.Entity)
			continue
		}
		key := fmt.Sprintf("e/%d", e.Entity)
		if local[key] {
			fe.add(at, "", "entity 0x%02X is listed twice in this file", e.Entity)
		}
		local[key] = true
		if !b.rs.entities[e.Entity].ok && ok {
			b.rs.entities[e.Entity] = placeRef{place: pl, weak: e.Weak, ok: true}
		}
	}
}

func (b *ruleSetBuilder) addPlaceNames(fe *fileErrs, names []nameCtxSpec) {
	for i, n := range names {
		at := fmt.Sprintf("contexts.names[%d]", i)
		re := fe.regexp(at, n.Name)
		pl, ok := fe.place(at, n.Context)
		if re != nil && ok {
			b.rs.placeNames = append(b.rs.placeNames, placePattern{re, pl})
		}
	}
}

func (b *ruleSetBuilder) addPrefixes(fe *fileErrs, prefixes []string) {
	for i, p := range prefixes {
		if re := fe.regexp(fmt.Sprintf("name_prefixes[%d]", i), p); re != nil {
			b.rs.prefixes = append(b.rs.prefixes, re)
		}
	}
}

func (b *ruleSetBuilder) addChassisFaults(fe *fileErrs, faults []chassisFaultSpec) {
	for i, c := range faults {
		at := fmt.Sprintf("chassis_faults[%d]", i)
		if c.Info == "" || !labelValueOK(c.Kind) {
			fe.add(at, c.Info, "a chassis fault needs an info key and a kind of lower-case letters, digits and _")
			continue
		}
		if c.Kind == "health" {
			fe.add(at, c.Kind, "kind health is taken: it comes from the Redfish rolled-up health")
			continue
		}
		if !b.seenFault[c.Info] {
			b.seenFault[c.Info] = true
			b.rs.faults = append(b.rs.faults, chassisFault{info: c.Info, kind: c.Kind})
		}
	}
}

func (b *ruleSetBuilder) addRules(fe *fileErrs, rules []ruleSpec) {
	for i := range rules {
		if r := fe.rule(fmt.Sprintf("rules[%d]", i), &rules[i]); r != nil {
			b.rs.rules = append(b.rs.rules, r)
		}
	}
}

// resolveDefaults sets each kind's default unit from the first file
// naming one, now that every file's units are known.
func (b *ruleSetBuilder) resolveDefaults() {
	for _, d := range b.defaults {
		u, ok := b.rs.units[strings.ToLower(strings.TrimSpace(d.alias))]
		if !ok {
			fe := &fileErrs{file: d.file}
			fe.add("kinds", d.alias, "default_unit %q is not a unit alias", d.alias)
			b.errs = append(b.errs, fe.errs...)
			continue
		}
		if u.kind != v1.Kind_KIND_UNSPECIFIED && u.kind != d.kind {
			fe := &fileErrs{file: d.file}
			fe.add("kinds", d.alias, "default_unit %q of %s measures %s", d.alias, kindNames[d.kind], kindNames[u.kind])
			b.errs = append(b.errs, fe.errs...)
			continue
		}
		if b.rs.kindDefaults[d.kind] == nil {
			b.rs.kindDefaults[d.kind] = u
		}
	}
}

// internNames builds the metric names of every class and base once.
func (rs *ruleSet) internNames() {
	for c := class(1); c < numClasses; c++ {
		for _, b := range classes[c].bases {
			n := &seriesNames{value: metricName(c, b)}
			for k := range thresholdWords {
				if thresholdWords[k] != "" {
					n.thresholds[k] = thresholdName(c, b, v1.ThresholdKind(k))
				}
			}
			rs.names[c][b] = n
		}
	}
}

// fileErrs collects the validation errors of one file, each naming the
// file, the line (found from the offending value) and the entry.
type fileErrs struct {
	file  RuleFile
	errs  []error
	lines func(path string) (int, bool) // parsed on the first error
}

func (fe *fileErrs) add(at, value, format string, args ...any) {
	// The line of the entry's key when the path is in the file, else of
	// the offending value, else of the nearest enclosing key.
	if fe.lines == nil {
		fe.lines = yamlx.KeyLines(fe.file.Data)
	}
	line, exact := fe.lines(at)
	if !exact {
		if l := lineOf(fe.file.Data, value); l > 0 {
			line = l
		}
	}
	where := fmt.Sprintf("%s:%d", fe.file.Name, line)
	// One line per problem: a pattern's compile error quotes it raw.
	msg := strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(fmt.Sprintf(format, args...))
	fe.errs = append(fe.errs, fmt.Errorf("read mapping file %s: %s: %s", where, at, msg))
}

func (fe *fileErrs) regexp(at, expr string) *regexp.Regexp {
	if expr == "" {
		fe.add(at, "", "empty pattern")
		return nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		fe.add(at, expr, "pattern %q: %v", expr, err)
		return nil
	}
	return re
}

func (fe *fileErrs) place(at, name string) (place, bool) {
	p, ok := placeByName(name)
	if !ok {
		fe.add(at, name, "context %q is not one of %s", name, strings.Join(Contexts, ", "))
	}
	return p, ok
}

func (fe *fileErrs) rule(at string, s *ruleSpec) *rule {
	n := len(fe.errs)
	r := &rule{where: fe.file.Name + " " + at}
	m := &s.Match
	if m.Vendor != "" {
		r.vendor = fe.regexp(at+".match.vendor", m.Vendor)
	}
	switch strings.ToLower(m.Protocol) {
	case "":
	case "redfish":
		r.protocol = v1.Protocol_PROTOCOL_REDFISH
	case "ipmi":
		r.protocol = v1.Protocol_PROTOCOL_IPMI
	default:
		fe.add(at+".match.protocol", m.Protocol, "protocol %q is not redfish or ipmi", m.Protocol)
	}
	for _, k := range m.Kinds {
		kind, ok := kindByName(k)
		if !ok {
			fe.add(at+".match.kinds", k, "kind %q is not one of %s", k, strings.Join(nonEmpty(kindNames[:]), ", "))
		}
		r.kinds = append(r.kinds, kind)
	}
	for _, t := range m.SensorTypes {
		r.sensorTypes = append(r.sensorTypes, strings.ToLower(strings.TrimSpace(t)))
	}
	for _, p := range m.PhysicalContexts {
		r.physical = append(r.physical, strings.ToLower(strings.TrimSpace(p)))
	}
	for _, e := range m.Entities {
		if e <= 0 || e > 255 {
			fe.add(at+".match.entities", "", "entity %d is not an IPMI entity ID (1 to 255)", e)
		}
		r.entities = append(r.entities, uint32(e))
	}
	if m.Name != "" {
		r.name = fe.regexp(at+".match.name", m.Name)
	}
	if m.Words != "" {
		r.words = fe.regexp(at+".match.words", m.Words)
	}
	if m.Vendor == "" && m.Protocol == "" && len(m.Kinds) == 0 && len(m.SensorTypes) == 0 && len(m.PhysicalContexts) == 0 && len(m.Entities) == 0 && m.Name == "" && m.Words == "" {
		fe.add(at, "", "a rule needs at least one matcher")
	}

	set := &s.Set
	hasSet := false
	if set.Class != "" {
		hasSet = true
		c, ok := classByName(set.Class)
		if !ok {
			var names []string
			for i := range classes {
				if classes[i].name != "" {
					names = append(names, classes[i].name)
				}
			}
			fe.add(at+".set.class", set.Class, "class %q is not one of %s", set.Class, strings.Join(names, ", "))
		}
		r.class = c
	}
	if set.Context != "" {
		hasSet = true
		r.place, r.placeSet = fe.place(at+".set.context", set.Context)
	}
	if set.Sensor != "" {
		hasSet = true
		r.sensor, r.sensorSet = set.Sensor, true
		if strings.Contains(set.Sensor, "$") && r.name == nil {
			fe.add(at+".set.sensor", set.Sensor, "sensor %q expands groups but the rule has no name pattern", set.Sensor)
		}
	}
	if set.IndexBase != nil {
		hasSet = true
		if *set.IndexBase != 0 && *set.IndexBase != 1 {
			fe.add(at+".set.index_base", "", "index_base must be 0 or 1, got %d", *set.IndexBase)
		}
		r.indexBase, r.indexBaseSet = *set.IndexBase, true
	}
	if set.Multiply != nil {
		hasSet = true
		if *set.Multiply == 0 || !finite(*set.Multiply) {
			fe.add(at+".set.multiply", "", "multiply must be finite and non-zero")
		}
		r.multiply, r.multiplySet = *set.Multiply, true
	}
	if set.IgnorePhysicalContext != nil {
		hasSet = true
		r.ignorePhys, r.ignorePhysSet = *set.IgnorePhysicalContext, true
	}
	if set.Priority != nil {
		hasSet = true
		r.priority, r.prioritySet = *set.Priority, true
	}
	if set.Drop != nil {
		hasSet = true
		r.drop, r.dropSet = *set.Drop, true
	}
	if set.StatusSignal != nil {
		hasSet = true
		r.status, r.statusSet = *set.StatusSignal, true
	}
	if !hasSet {
		fe.add(at, "", "a rule needs at least one setting")
	}
	if len(fe.errs) > n {
		return nil
	}
	return r
}

// lineOf is the first line of b holding value outside a comment, or 0.
func lineOf(b []byte, value string) int {
	if value == "" {
		return 0
	}
	needle := []byte(value)
	for i, l := range bytes.Split(b, []byte("\n")) {
		if j := bytes.Index(l, []byte(" #")); j >= 0 {
			l = l[:j]
		}
		if bytes.Contains(l, needle) {
			return i + 1
		}
	}
	return 0
}

func nonEmpty(ss []string) []string {
	return slices.DeleteFunc(slices.Clone(ss), func(s string) bool { return s == "" })
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func labelValueOK(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
