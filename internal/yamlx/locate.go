package yamlx

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v2"
	yamlv3 "go.yaml.in/yaml/v3"
)

// LocatedError is one problem of a YAML document, placed: the 1-based line
// of the key it is about and that key's YAML path (remote_write[0].url).
// A key that is missing is placed on the line of the nearest enclosing key
// present (line 1 when there is none).
type LocatedError struct {
	Line int
	Path string // empty when only the line is known
	Msg  string
	Err  error // the error as first raised, for errors.Is and errors.As
}

// Error is one line: line breaks of a quoted value are escaped, so that
// each problem of a joined error is one line of text naming its line.
func (e *LocatedError) Error() string {
	msg := oneLine.Replace(e.Msg)
	if e.Path == "" {
		return fmt.Sprintf("line %d: %s", e.Line, msg)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, oneLine.Replace(e.Path), msg)
}

var oneLine = strings.NewReplacer("\n", `\n`, "\r", `\r`)

func (e *LocatedError) Unwrap() error { return e.Err }

// LocateErrors places every problem err holds in doc, the YAML document it
// is about, so that each names its line and the YAML path of its key.
// Configuration files use it on the errors of decoding and of Validate:
//
//   - a validation message starting with a key path ("sharding.shards:
//     must be at least 1", "remote_write[0]: url: must be set") gets the
//     line of that key;
//   - a decoding error naming a line ("line 4: field shards2 not found in
//     type ...") gets the path of the key or value on that line.
//
// Joined errors (errors.Join, yaml's list of type errors) become one
// LocatedError each, joined again in order. Messages that can be placed
// neither way are kept as they are.
//
// This is a YAML helper, not an inventory one: it lives here because the
// poller's and the gateway's configuration and the inventory and
// credentials files all need it and all import this package.
func LocateErrors(doc []byte, err error) error {
	if err == nil {
		return nil
	}
	return parseDoc(doc).locateAll(err)
}

// Locate places the problems of err in the document, as LocateErrors
// does, without parsing it again.
func (d Doc) Locate(err error) error {
	if err == nil {
		return nil
	}
	return d.d.locateAll(err)
}

func (d doc) locateAll(err error) error {
	leaves := flatten("", err)
	var out []error
	for i, l := range leaves {
		if i == maxProblems {
			// Placing a problem may walk the document: a file with a
			// mistake in each of its thousands of entries must not take
			// quadratic time to report, nor fill a screen.
			line := 1
			var le *LocatedError
			if errors.As(out[len(out)-1], &le) {
				line = le.Line
			}
			out = append(out, &LocatedError{Line: line, Msg: fmt.Sprintf("and %d more problems after this line", len(leaves)-maxProblems)})
			break
		}
		out = append(out, d.locate(l.msg, l.err))
	}
	return errors.Join(out...)
}

// maxProblems is how many problems LocateErrors reports one by one.
const maxProblems = 100

// redacted is an error whose message lost a password; Unwrap still gives
// the original to errors.Is and errors.As.
type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }

type leaf struct {
	msg string
	err error
}

// flatten lists the single problems of err, each with the text that
// wrapped it (for fmt.Errorf("remote_write[0]: %w", errors.Join(...))
// every joined problem gets the prefix).
func flatten(prefix string, err error) []leaf {
	switch u := err.(type) {
	case *yamlv3.TypeError:
		out := make([]leaf, 0, len(u.Errors))
		for _, e := range u.Errors {
			out = append(out, leaf{prefix + e, err})
		}
		if len(out) > 0 {
			return out
		}
	case *LocatedError:
		// Already placed: its path is the whole path, whatever wraps it.
		return []leaf{{u.Error(), u}}
	case *yaml.TypeError:
		out := make([]leaf, 0, len(u.Errors))
		for _, e := range u.Errors {
			out = append(out, leaf{prefix + e, err})
		}
		if len(out) > 0 {
			return out
		}
	case interface{ Unwrap() []error }:
		var out []leaf
		for _, e := range u.Unwrap() {
			if e != nil {
				out = append(out, flatten(prefix, e)...)
			}
		}
		return out
	case interface{ Unwrap() error }:
		inner := u.Unwrap()
		if inner != nil {
			msg, im := err.Error(), inner.Error()
			if _, multi := inner.(interface{ Unwrap() []error }); strings.HasSuffix(msg, im) && (multi || strings.Contains(im, "\n")) {
				return flatten(prefix+msg[:len(msg)-len(im)], inner)
			}
		}
	}
	return []leaf{{prefix + err.Error(), err}}
}

// doc is a parsed YAML document; root is nil when it did not parse or is
// empty.
type doc struct {
	root *yamlv3.Node
}

func parseDoc(b []byte) doc {
	var n yamlv3.Node
	if err := yamlv3.Unmarshal(b, &n); err != nil || len(n.Content) == 0 {
		return doc{}
	}
	return doc{root: n.Content[0]}
}

var (
	lineRE      = regexp.MustCompile(`(?s)^(?:yaml: )?line (\d+): (.*)$`)
	notFoundRE  = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	setTwiceRE  = regexp.MustCompile(`^field (\S+) already set in type \S+$`)
	cannotRE    = regexp.MustCompile("^cannot unmarshal (\\S+)(?: `([^`]*)`)? into ")
	alreadyRE   = regexp.MustCompile(`^key "(.*)" already set in map$`)
	quotedRE    = regexp.MustCompile("\"((?:[^\"\\\\]|\\\\.)+)\"|`([^`]+)`|'([^']+)'")
	pathRE      = regexp.MustCompile(`^[A-Za-z0-9_-]+(\[\d+\])*(\.[A-Za-z0-9_-]+(\[\d+\])*)*$`)
	pathSegment = regexp.MustCompile(`[A-Za-z0-9_-]+|\[\d+\]`)
)

// userinfoRE matches the password of a URL: decoders quote the URL they
// could not parse, and a password must not reach a log through an error.
var userinfoRE = regexp.MustCompile(`(//[^/\s:@"'` + "`" + `]*):[^@\s/"'` + "`" + `]*@`)

// locate places one problem. A URL password in it is redacted from what
// is shown, after placing: the value it is placed by holds the password.
func (d doc) locate(msg string, err error) error {
	if le, ok := err.(*LocatedError); ok {
		return le
	}
	r := userinfoRE.ReplaceAllString(msg, "$1:<secret>@")
	if r == msg {
		return d.place(msg, err)
	}
	red := &redacted{msg: r, err: err}
	if le, ok := d.place(msg, err).(*LocatedError); ok {
		le.Msg = userinfoRE.ReplaceAllString(le.Msg, "$1:<secret>@")
		le.Path = userinfoRE.ReplaceAllString(le.Path, "$1:<secret>@")
		le.Err = red
		return le
	}
	return red
}

func (d doc) place(msg string, err error) error {
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1]) // lineRE matched digits only
		rest := m[2]
		if segs := leadingPath(rest); len(segs) > 0 {
			// Already "line N: path: ...".
			return &LocatedError{Line: line, Path: strings.Join(segs, "."), Msg: stripPath(rest, len(segs)), Err: err}
		}
		if k := notFoundRE.FindStringSubmatch(rest); k != nil {
			if p, ok := d.keyAt(line, k[1]); ok {
				return &LocatedError{Line: line, Path: p, Msg: "unknown key", Err: err}
			}
			return &LocatedError{Line: line, Path: k[1], Msg: "unknown key", Err: err}
		}
		if k := setTwiceRE.FindStringSubmatch(rest); k != nil {
			if p, ok := d.keyAt(line, k[1]); ok {
				return &LocatedError{Line: line, Path: p, Msg: "key set twice", Err: err}
			}
		}
		if k := alreadyRE.FindStringSubmatch(rest); k != nil {
			if p, ok := d.keyAt(line, k[1]); ok {
				return &LocatedError{Line: line, Path: p, Msg: "key set twice", Err: err}
			}
		}
		if k := cannotRE.FindStringSubmatch(rest); k != nil {
			if p, ok := d.valueAt(line, k[1], strings.TrimSuffix(k[2], "...")); ok {
				return &LocatedError{Line: line, Path: p, Msg: rest, Err: err}
			}
		}
		for _, q := range quotedRE.FindAllStringSubmatch(rest, -1) {
			if p, ok := d.valueAt(line, "", q[1]+q[2]+q[3]); ok {
				return &LocatedError{Line: line, Path: p, Msg: rest, Err: err}
			}
		}
		if p, ok := d.keyAt(line, ""); ok {
			return &LocatedError{Line: line, Path: p, Msg: rest, Err: err}
		}
		return &LocatedError{Line: line, Msg: rest, Err: err}
	}
	if segs := leadingPath(msg); len(segs) > 0 {
		return &LocatedError{Line: d.lineOf(segs), Path: strings.Join(segs, "."), Msg: stripPath(msg, len(segs)), Err: err}
	}
	// Neither a line nor a key: the message is kept as it is. Values are
	// not searched for in the text: the same text may be another key's.
	return err
}

// leadingPath returns the key path a message starts with: its leading
// "key: " parts, each a YAML path ("remote_write[0]: queue_config: ...").
func leadingPath(msg string) []string {
	var segs []string
	for {
		i := strings.Index(msg, ": ")
		if i <= 0 || !pathRE.MatchString(msg[:i]) {
			return segs
		}
		segs = append(segs, msg[:i])
		msg = msg[i+2:]
	}
}

func stripPath(msg string, n int) string {
	for range n {
		msg = msg[strings.Index(msg, ": ")+2:]
	}
	return msg
}

// lineOf is the line of the key at path (a list of dotted parts), or of
// its nearest enclosing key present.
func (d doc) lineOf(parts []string) int {
	var segs []seg
	for _, part := range parts {
		for _, s := range pathSegment.FindAllString(part, -1) {
			if strings.HasPrefix(s, "[") {
				i, err := strconv.Atoi(s[1 : len(s)-1])
				if err != nil {
					i = -1
				}
				segs = append(segs, seg{index: i, isIndex: true})
			} else {
				segs = append(segs, seg{key: s})
			}
		}
	}
	return d.lineOfSegs(segs)
}

// seg is one step of a path: a mapping key or a sequence index.
type seg struct {
	key     string
	index   int
	isIndex bool
}

func (d doc) lineOfSegs(segs []seg) int {
	n := d.root
	if n == nil {
		return 1
	}
	line := n.Line
	for _, s := range segs {
		n = deref(n)
		next, at := child(n, s)
		if next == nil {
			return line
		}
		n, line = next, at
	}
	return line
}

// child returns the value under s of n and the line of its key (or item).
func child(n *yamlv3.Node, s seg) (*yamlv3.Node, int) {
	if s.isIndex {
		if n.Kind != yamlv3.SequenceNode || s.index < 0 || s.index >= len(n.Content) {
			return nil, 0
		}
		return n.Content[s.index], n.Content[s.index].Line
	}
	if n.Kind != yamlv3.MappingNode {
		return nil, 0
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == s.key {
			return n.Content[i+1], n.Content[i].Line
		}
	}
	return nil, 0
}

func deref(n *yamlv3.Node) *yamlv3.Node {
	if n.Kind == yamlv3.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// keyAt finds the path of a key on line; name "" takes the first.
func (d doc) keyAt(line int, name string) (string, bool) {
	_, p, ok := d.find(func(k, _ *yamlv3.Node) bool {
		return k != nil && k.Line == line && (name == "" || k.Value == name)
	})
	return p, ok
}

// valueAt finds the path of a value on line: of YAML tag tag ("!!str",
// "!!map"; "" for any scalar) and starting with text. A block holding
// another on the same line ("files: {a: b}" inside "inventory:") gives the
// innermost: a type error is about the deepest value decoded.
func (d doc) valueAt(line int, tag, text string) (string, bool) {
	if tag == "!!map" || tag == "!!seq" {
		kind := yamlv3.MappingNode
		if tag == "!!seq" {
			kind = yamlv3.SequenceNode
		}
		var last string
		var found bool
		d.find(func(_, v *yamlv3.Node) bool {
			if v.Line == line && v.Kind == kind {
				last, found = d.pathOf(v), true
			}
			return false
		})
		return last, found
	}
	_, p, ok := d.find(func(_, v *yamlv3.Node) bool {
		return v.Line == line && v.Kind == yamlv3.ScalarNode && strings.HasPrefix(v.Value, text)
	})
	return p, ok
}

// pathOf is the path of node n.
func (d doc) pathOf(n *yamlv3.Node) string {
	_, p, _ := d.find(func(_, v *yamlv3.Node) bool { return v == n })
	return p
}

// maxFindDepth bounds the walk of find: configuration is never this deep,
// and a hostile document must not exhaust the stack.
const maxFindDepth = 100

// find walks the document in order and returns the first (key, value) or
// (nil, item) pair match accepts, with its line and path. Aliases are not
// followed.
func (d doc) find(match func(key, value *yamlv3.Node) bool) (int, string, bool) {
	var walk func(n *yamlv3.Node, path string, depth int) (int, string, bool)
	walk = func(n *yamlv3.Node, path string, depth int) (int, string, bool) {
		if depth > maxFindDepth {
			return 0, "", false
		}
		switch n.Kind {
		case yamlv3.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := joinPath(path, k.Value)
				if match(k, v) {
					return k.Line, p, true
				}
				if line, q, ok := walk(v, p, depth+1); ok {
					return line, q, ok
				}
			}
		case yamlv3.SequenceNode:
			for i, v := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if match(nil, v) {
					return v.Line, p, true
				}
				if line, q, ok := walk(v, p, depth+1); ok {
					return line, q, ok
				}
			}
		}
		return 0, "", false
	}
	if d.root == nil {
		return 0, "", false
	}
	return walk(d.root, "", 0)
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func joinPath(path, key string) string {
	if !plainKey.MatchString(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// KeyLines parses doc once and returns a lookup of the line of the key at
// a path ("rules[0].set.class"), and whether it is there; when it is not,
// the line of its nearest enclosing key present (1 when none is).
func KeyLines(doc []byte) func(path string) (line int, found bool) {
	d := parseDoc(doc)
	return func(path string) (int, bool) {
		if !pathRE.MatchString(path) {
			return 1, false
		}
		parts := []string{path}
		_, found := d.resolve(parts)
		return d.lineOf(parts), found
	}
}

// resolve walks the path and returns its node, or false.
func (d doc) resolve(parts []string) (*yamlv3.Node, bool) {
	n := d.root
	if n == nil {
		return nil, false
	}
	for _, part := range parts {
		for _, s := range pathSegment.FindAllString(part, -1) {
			sg := seg{key: s}
			if strings.HasPrefix(s, "[") {
				i, err := strconv.Atoi(s[1 : len(s)-1])
				if err != nil {
					return nil, false
				}
				sg = seg{index: i, isIndex: true}
			}
			next, _ := child(deref(n), sg)
			if next == nil {
				return nil, false
			}
			n = next
		}
	}
	return n, true
}

// Doc is a parsed YAML document for placing problems found after decoding
// (a value that decoded but is invalid).
type Doc struct{ d doc }

// ParseDoc parses b for Line; a document that does not parse places
// everything on line 1.
func ParseDoc(b []byte) Doc { return Doc{parseDoc(b)} }

// Line returns the line of the map key reached through keys from the root,
// and its YAML path; a missing key is placed on its nearest present
// ancestor's line.
func (d Doc) Line(keys ...string) (line int, path string) {
	segs := make([]seg, len(keys))
	for i, k := range keys {
		segs[i] = seg{key: k}
		path = joinPath(path, k)
	}
	return d.d.lineOfSegs(segs), path
}

// Problems lists the single problems err holds (joined errors, the entries
// of a YAML type error), each on one line with the text that wrapped it,
// for formats without YAML paths (a CSV row).
func Problems(err error) []string {
	ls := flatten("", err)
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = oneLine.Replace(l.msg)
	}
	return out
}

// ItemLines returns the line of each item of the sequence at the map keys
// given from the root (ItemLines("bmcs")), nil when there is none.
func (d Doc) ItemLines(keys ...string) []int {
	n := d.d.root
	if n == nil {
		return nil
	}
	for _, k := range keys {
		n, _ = child(deref(n), seg{key: k})
		if n == nil {
			return nil
		}
	}
	n = deref(n)
	if n.Kind != yamlv3.SequenceNode {
		return nil
	}
	out := make([]int, len(n.Content))
	for i, item := range n.Content {
		out[i] = item.Line
	}
	return out
}
