package yamlx

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v2"
	yamlv3 "go.yaml.in/yaml/v3"
)

// Option changes how problems are reported.
type Option func(*options)

type options struct{ hideValues bool }

// HideValues leaves the values out of decoding problems: for files whose
// values may be secrets (a password written where a map was expected).
func HideValues() Option { return func(o *options) { o.hideValues = true } }

// UnmarshalStrict decodes YAML into v with yaml v2's UnmarshalStrict:
// unknown keys and keys set twice are errors. When it fails, every problem
// of the document is reported, each a *LocatedError placed at the node it
// is about (its key's line, or its item's), joined with errors.Join.
// Values are never searched for in the text: each node is decoded on its
// own, so a bad value is placed where it is even when the same text
// appears earlier in the file.
func UnmarshalStrict(b []byte, v interface{}, opts ...Option) error {
	err := yaml.UnmarshalStrict(b, v)
	if err == nil {
		return nil
	}
	return placeDecode(parseDoc(b), reflect.TypeOf(v), err, opts)
}

// Decode parses b once, into YAML nodes, and decodes v from them, as
// strictly as UnmarshalStrict: a key that no field takes and a key set
// twice are errors. It returns the parsed document, to place the problems
// Validate finds afterwards (Doc.Locate) and to read lines (Doc.ItemLines)
// without parsing again. Every problem is a *LocatedError, joined.
func Decode(b []byte, v interface{}, opts ...Option) (Doc, error) {
	var n yamlv3.Node
	if err := yamlv3.Unmarshal(b, &n); err != nil {
		// A syntax error: yaml v2 names the line it is on more closely
		// (a tab is reported on its own line).
		if err2 := yaml.UnmarshalStrict(b, v); err2 != nil {
			err = err2
		}
		return Doc{}, doc{}.fallback(err, opts)
	}
	if len(n.Content) == 0 {
		return Doc{}, nil
	}
	d := doc{root: n.Content[0]}
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return Doc{d}, fmt.Errorf("yamlx: Decode needs a pointer, got %T", v)
	}
	// The keys are checked, and empty items filled, before decoding.
	w := newWalker(opts, false)
	w.check(d.root, t.Elem(), step{index: -1}, d.root.Line, 0)
	err := d.root.Decode(v)
	if err != nil {
		w = newWalker(opts, true)
		w.known = true
		w.check(d.root, t.Elem(), step{index: -1}, d.root.Line, 0)
	}
	if err == nil && len(w.errs) == 0 {
		return Doc{d}, nil
	}
	if len(w.errs) == 0 {
		return Doc{d}, d.fallback(err, opts)
	}
	return Doc{d}, w.result()
}

// placeDecode reports the problems of a document that failed to decode
// into t (a pointer type), each at its node.
func placeDecode(d doc, t reflect.Type, err error, opts []Option) error {
	if d.root == nil || t == nil || t.Kind() != reflect.Pointer {
		return d.fallback(err, opts)
	}
	w := newWalker(opts, true)
	w.known = true
	w.check(d.root, t.Elem(), step{index: -1}, d.root.Line, 0)
	if len(w.errs) == 0 {
		return d.fallback(err, opts)
	}
	return w.result()
}

// fallback places an error no node could be found for: by the line its
// message names, else at the document's first line. It happens when the
// decoders disagree (a value one of them takes, the other not).
func (d doc) fallback(err error, opts []Option) error {
	var o options
	for _, f := range opts {
		f(&o)
	}
	var out []error
	for _, l := range flatten("", err) {
		e := d.locate(l.msg, l.err)
		le, ok := e.(*LocatedError)
		if !ok {
			line := 1
			if d.root != nil {
				line = d.root.Line
			}
			le = &LocatedError{Line: line, Msg: redact(oneLine.Replace(l.msg)), Err: e}
		}
		if o.hideValues {
			le.Msg = hideValue(le.Msg)
			le.Err = &redacted{msg: le.Msg, err: le.Err}
		}
		out = append(out, le)
	}
	return errors.Join(out...)
}

// walker visits a document's nodes beside the Go type each decodes into.
type walker struct {
	opts    options
	decode  bool // decode nodes to find their problems (the document failed)
	known   bool // the next node checked is known not to decode (the root)
	errs    []error
	more    int // problems past maxProblems
	visits  int // nodes visited, bounded: aliases may repeat a subtree
	decodes int
	aliases int
}

// maxVisits bounds the nodes one walk visits; maxDecodes the nodes it
// decodes on their own. A document of 20 000 BMCs has about 200 000 nodes.
const (
	maxVisits  = 4 << 20
	maxDecodes = 1 << 20
	// maxAliasDecodes bounds the aliases decoded: each may stand for a
	// large subtree.
	maxAliasDecodes = 1000
)

func newWalker(opts []Option, decode bool) *walker {
	w := &walker{decode: decode}
	for _, o := range opts {
		o(&w.opts)
	}
	return w
}

func (w *walker) add(line int, path, msg string, err error) {
	if len(w.errs) >= maxProblems {
		w.more++
		return
	}
	if w.opts.hideValues {
		msg = hideValue(msg)
	}
	w.errs = append(w.errs, &LocatedError{Line: line, Path: redact(path), Msg: redact(msg), Err: &redacted{msg: redact(msg), err: err}})
}

func (w *walker) result() error {
	if w.more > 0 {
		last := w.errs[len(w.errs)-1].(*LocatedError)
		w.errs = append(w.errs, &LocatedError{Line: last.Line, Msg: fmt.Sprintf("and %d more problems after this line", w.more)})
	}
	return errors.Join(w.errs...)
}

// check visits node n, which decodes into a value of type t at path; line
// is where a problem of n is reported (its key's line, or its own). With
// w.decode, a node that does not decode alone is looked into: its
// children's problems are reported, or its own when they have none.
func (w *walker) check(n *yamlv3.Node, t reflect.Type, at0 step, line, depth int) {
	w.visits++
	if depth > maxFindDepth || w.visits > maxVisits {
		return
	}
	at := n.Line // a value is placed where it is written
	if at < line {
		at = line
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yamlv3.AliasNode {
		// Not followed: what the anchor holds is checked where it is
		// written, and a document whose aliases repeat a subtree (or hold
		// themselves) must not multiply the work. An alias that does not
		// decode where it is used is reported there.
		w.aliases++
		if w.decode && !w.known && w.aliases <= maxAliasDecodes {
			if err := decodeNode(n, t); err != nil {
				for _, msg := range messages(err) {
					w.add(line, at0.String(), msg, err)
				}
			}
		}
		w.known = false
		return
	}
	if w.decode {
		w.decodes++
		if w.decodes > maxDecodes {
			return
		}
		var err error
		if w.known {
			w.known = false
			err = errKnown
		} else {
			err = decodeNode(n, t)
		}
		if err == nil {
			// It decodes: only keys no field takes can be wrong below,
			// which the non-strict decoding of a lone node lets pass.
			w.decode = false
			w.children(n, t, at0, depth)
			w.decode = true
			return
		}
		before := len(w.errs) + w.more
		w.children(n, t, at0, depth)
		if len(w.errs)+w.more == before && err != errKnown {
			for _, msg := range messages(err) {
				w.add(at, at0.String(), msg, err)
			}
		}
		return
	}
	w.children(n, t, at0, depth)
}

// errKnown stands for the error of a node already known not to decode.
var errKnown = errors.New("does not decode")

// step is where a node is: its parent's path and its key or index. The
// path is only written out when a problem is reported or the node has
// children: most nodes are scalars without problems.
type step struct {
	parent string
	key    string
	index  int // -1 for a key (or the root)
}

func (s step) String() string {
	if s.index >= 0 {
		return s.parent + "[" + strconv.Itoa(s.index) + "]"
	}
	if s.key == "" && s.parent == "" {
		return ""
	}
	return joinPath(s.parent, s.key)
}

// children visits the keys and items of n.
func (w *walker) children(n *yamlv3.Node, t reflect.Type, at step, depth int) {
	if n.Kind != yamlv3.MappingNode && n.Kind != yamlv3.SequenceNode {
		return
	}
	path := at.String()
	switch {
	case n.Kind == yamlv3.MappingNode && (t.Kind() == reflect.Struct || t.Kind() == reflect.Map):
		seen := make(map[string]int, len(n.Content)/2)
		w.mapping(n, t, path, depth, seen)
	case n.Kind == yamlv3.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for i, item := range n.Content {
			if item.Kind == yamlv3.ScalarNode && item.ShortTag() == "!!null" {
				if z := zeroNode(t.Elem(), item); z != nil {
					n.Content[i], item = z, z
				}
			}
			w.check(item, t.Elem(), step{parent: path, index: i}, item.Line, depth+1)
		}
	}
}

// mapping visits the pairs of a mapping decoded into a struct or a map;
// seen holds the keys met so far, and the line of each, for keys set twice
// (merged mappings, "<<: *defaults", included).
func (w *walker) mapping(n *yamlv3.Node, t reflect.Type, path string, depth int, seen map[string]int) {
	var fields *structFields
	if t.Kind() == reflect.Struct {
		fields = fieldsOf(t)
	}
	var merges []*yamlv3.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yamlv3.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yamlv3.ScalarNode {
			continue // a complex key: left to the decoders
		}
		p := step{parent: path, key: k.Value, index: -1}
		if first, twice := seen[k.Value]; twice {
			w.add(k.Line, p.String(), fmt.Sprintf("key set twice (first at line %d)", first), nil)
			continue
		}
		seen[k.Value] = k.Line
		switch {
		case fields == nil:
			w.check(v, t.Elem(), p, k.Line, depth+1)
		case fields.byName[k.Value] != nil:
			w.check(v, fields.byName[k.Value], p, k.Line, depth+1)
		case fields.inlineMap != nil:
			w.check(v, fields.inlineMap, p, k.Line, depth+1)
		default:
			w.add(k.Line, p.String(), "unknown key", nil)
		}
	}
	// Keys of a merged mapping come after the mapping's own, which win.
	for _, m := range merges {
		if m.Kind == yamlv3.AliasNode && m.Alias != nil {
			m = m.Alias
		}
		var ms []*yamlv3.Node
		switch m.Kind {
		case yamlv3.MappingNode:
			ms = []*yamlv3.Node{m}
		case yamlv3.SequenceNode:
			ms = m.Content
		}
		for _, mm := range ms {
			if mm.Kind == yamlv3.AliasNode && mm.Alias != nil {
				mm = mm.Alias
			}
			if mm.Kind == yamlv3.MappingNode && depth < maxFindDepth {
				own := make(map[string]int, len(seen))
				for k := range seen {
					own[k] = -1
				}
				w.mergedMapping(mm, t, path, depth+1, fields, own)
			}
		}
	}
}

// mergedMapping visits a mapping merged in with "<<": its keys the
// mapping sets itself are overridden, not set twice.
func (w *walker) mergedMapping(n *yamlv3.Node, t reflect.Type, path string, depth int, fields *structFields, own map[string]int) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yamlv3.ScalarNode || k.Value == "<<" {
			continue
		}
		if _, overridden := own[k.Value]; overridden {
			continue
		}
		p := step{parent: path, key: k.Value, index: -1}
		switch {
		case fields == nil:
			w.check(v, t.Elem(), p, k.Line, depth+1)
		case fields.byName[k.Value] != nil:
			w.check(v, fields.byName[k.Value], p, k.Line, depth+1)
		case fields.inlineMap != nil:
			w.check(v, fields.inlineMap, p, k.Line, depth+1)
		default:
			w.add(k.Line, p.String(), "unknown key", nil)
		}
	}
}

// zeroNode is what an empty item of a list of t is decoded as: yaml v2
// gives it the zero value (an inventory entry "-" is an entry without an
// id or address, an error), where yaml v3 would drop it.
func zeroNode(t reflect.Type, at *yamlv3.Node) *yamlv3.Node {
	z := &yamlv3.Node{Kind: yamlv3.ScalarNode, Line: at.Line, Column: at.Column}
	switch t.Kind() {
	case reflect.Struct:
		z.Kind, z.Tag = yamlv3.MappingNode, "!!map"
	case reflect.String:
		z.Tag, z.Style = "!!str", yamlv3.DoubleQuotedStyle
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		z.Tag, z.Value = "!!int", "0"
	case reflect.Float32, reflect.Float64:
		z.Tag, z.Value = "!!float", "0"
	case reflect.Bool:
		z.Tag, z.Value = "!!bool", "false"
	default:
		return nil
	}
	return z
}

// decodeNode decodes n alone into a new value of type t.
func decodeNode(n *yamlv3.Node, t reflect.Type) (err error) {
	defer func() {
		// A decoder of a third-party type may panic on a value it does
		// not expect; that is a problem of the value.
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot decode: %v", r)
		}
	}()
	return n.Decode(reflect.New(t).Interface())
}

// messages are the single problems of a lone node's decoding, without
// the lines the decoder names (they are the node's).
func messages(err error) []string {
	var out []string
	for _, l := range flatten("", err) {
		msg := l.msg
		if m := lineRE.FindStringSubmatch(msg); m != nil {
			msg = m[2]
		}
		msg = strings.TrimPrefix(msg, "yaml: ")
		out = append(out, oneLine.Replace(msg))
	}
	return out
}

// redact hides the password of a URL.
func redact(s string) string { return userinfoRE.ReplaceAllString(s, "$1:<secret>@") }

var (
	typeErrorValue = regexp.MustCompile("(cannot unmarshal \\S+) `[^`]*`")
	quotedValue    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'[^']*'`)
)

// hideValue leaves the quoted values out of a message.
func hideValue(msg string) string {
	msg = typeErrorValue.ReplaceAllString(msg, "$1")
	return quotedValue.ReplaceAllString(msg, "(value hidden)")
}

// structFields are the keys of a struct type as yaml decodes them.
type structFields struct {
	byName    map[string]reflect.Type
	inlineMap reflect.Type // the value type of an inline map, which takes any key
}

var fieldsCache sync.Map // reflect.Type -> *structFields

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldsCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{byName: map[string]reflect.Type{}}
	addFields(f, t, 0)
	fieldsCache.Store(t, f)
	return f
}

func addFields(f *structFields, t reflect.Type, depth int) {
	if depth > 10 {
		return
	}
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.PkgPath != "" && !sf.Anonymous {
			continue // unexported
		}
		tag := sf.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		parts := strings.Split(tag, ",")
		name := parts[0]
		inline := false
		for _, flag := range parts[1:] {
			if flag == "inline" {
				inline = true
			}
		}
		if inline {
			ft := sf.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch ft.Kind() {
			case reflect.Struct:
				addFields(f, ft, depth+1)
			case reflect.Map:
				f.inlineMap = ft.Elem()
			}
			continue
		}
		if sf.PkgPath != "" {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		f.byName[name] = sf.Type
	}
}

// FieldPaths lists the YAML paths of every leaf key of t (a struct type),
// with the Go type each decodes into: "nats.stream.max_age" and
// model.Duration. A list becomes "key[0]", a map "key.*". It is for tests
// that must cover every key of a format.
func FieldPaths(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var walk func(t reflect.Type, path string, depth int)
	walk = func(t reflect.Type, path string, depth int) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		_, custom := reflect.New(t).Interface().(yaml.Unmarshaler)
		isLeaf := depth > 8 || t.Kind() != reflect.Struct && t.Kind() != reflect.Slice && t.Kind() != reflect.Map
		if t.Kind() == reflect.Struct && custom && (len(fieldsOf(t).byName) == 0 || embedsValue(t)) {
			isLeaf = true // a value decoded from a scalar: config.URL, a regexp
		}
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			isLeaf = true
		}
		if isLeaf || t.Kind() == reflect.Struct && fieldsOf(t).byName == nil {
			out[path] = t
			return
		}
		switch t.Kind() {
		case reflect.Slice:
			walk(t.Elem(), path+"[0]", depth+1)
		case reflect.Map:
			walk(t.Elem(), joinPath(path, "*"), depth+1)
		case reflect.Struct:
			f := fieldsOf(t)
			if len(f.byName) == 0 {
				out[path] = t
				return
			}
			for name, ft := range f.byName {
				walk(ft, joinPath(path, name), depth+1)
			}
		}
	}
	walk(t, "", 0)
	return out
}

// embedsValue reports whether struct t embeds a type without inlining it,
// as the wrappers of a scalar do (struct{ *url.URL }).
func embedsValue(t reflect.Type) bool {
	for i := range t.NumField() {
		if sf := t.Field(i); sf.Anonymous && !strings.Contains(sf.Tag.Get("yaml"), "inline") {
			return true
		}
	}
	return false
}
