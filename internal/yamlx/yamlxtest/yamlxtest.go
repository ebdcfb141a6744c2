// Package yamlxtest builds YAML documents for placement tests: keys given
// by their paths, in order, and the line each ends up on.
package yamlxtest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
)

// KV is one key of a document: its path ("nats.stream.max_age",
// "remote_write[0].url") and its value, as YAML ("1", "[x]", "'ftp://h'").
type KV struct{ Path, Value string }

var segRE = regexp.MustCompile(`[^.\[\]]+|\[\d+\]`)

// Build writes the keys in order, nested as their paths say (a path's
// parents are created the first time they are needed), and returns the
// document and the line of each path's key.
func Build(kvs ...KV) ([]byte, map[string]int, error) {
	root := &yamlv3.Node{Kind: yamlv3.MappingNode}
	for _, kv := range kvs {
		var v yamlv3.Node
		if err := yamlv3.Unmarshal([]byte(kv.Value), &v); err != nil || len(v.Content) == 0 {
			return nil, nil, fmt.Errorf("value of %s: %q is not YAML", kv.Path, kv.Value)
		}
		segs := segRE.FindAllString(kv.Path, -1)
		n := root
		for i, s := range segs {
			last := i == len(segs)-1
			if strings.HasPrefix(s, "[") {
				// the path's segments are written by the tests: "[n]" holds digits
				idx, _ := strconv.Atoi(s[1 : len(s)-1])
				if n.Kind != yamlv3.SequenceNode {
					return nil, nil, fmt.Errorf("%s: %s is not a list", kv.Path, s)
				}
				for len(n.Content) <= idx {
					n.Content = append(n.Content, &yamlv3.Node{Kind: yamlv3.MappingNode})
				}
				if last {
					n.Content[idx] = v.Content[0]
				}
				n = n.Content[idx]
				continue
			}
			if n.Kind != yamlv3.MappingNode {
				return nil, nil, fmt.Errorf("%s: parent of %s is not a map", kv.Path, s)
			}
			var next *yamlv3.Node
			for j := 0; j+1 < len(n.Content); j += 2 {
				if n.Content[j].Value == s {
					next = n.Content[j+1]
				}
			}
			if last {
				if next != nil {
					return nil, nil, fmt.Errorf("%s set twice", kv.Path)
				}
				next = v.Content[0]
				n.Content = append(n.Content, &yamlv3.Node{Kind: yamlv3.ScalarNode, Value: s}, next)
			} else if next == nil {
				next = &yamlv3.Node{Kind: yamlv3.MappingNode}
				if i+1 < len(segs) && strings.HasPrefix(segs[i+1], "[") {
					next.Kind = yamlv3.SequenceNode
				}
				n.Content = append(n.Content, &yamlv3.Node{Kind: yamlv3.ScalarNode, Value: s}, next)
			}
			n = next
		}
	}
	b, err := yamlv3.Marshal(root)
	if err != nil {
		return nil, nil, err
	}
	// The lines, from the document as written.
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(b, &doc); err != nil {
		return nil, nil, err
	}
	lines := map[string]int{}
	for _, kv := range kvs {
		lines[kv.Path] = lineOf(doc.Content[0], segRE.FindAllString(kv.Path, -1))
	}
	return b, lines, nil
}

func lineOf(n *yamlv3.Node, segs []string) int {
	line := n.Line
	for _, s := range segs {
		if strings.HasPrefix(s, "[") {
			idx, _ := strconv.Atoi(s[1 : len(s)-1]) // as in resolve: "[n]" holds digits
			n = n.Content[idx]
			line = n.Line
			continue
		}
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == s {
				line, n = n.Content[j].Line, n.Content[j+1]
				break
			}
		}
	}
	return line
}

// Case is a key and a bad value for it, whose text Decoy also writes
// earlier in the document under another key.
type Case struct {
	Path, Bad string
}

// Doc builds decoy, then base (without the keys at or under bad.Path),
// then bad, and returns the document and the line of bad's key.
func Doc(decoy KV, base []KV, bad ...KV) ([]byte, map[string]int, error) {
	kvs := []KV{decoy}
	for _, kv := range base {
		skip := false
		for _, b := range bad {
			if kv.Path == b.Path || strings.HasPrefix(kv.Path, b.Path+".") || strings.HasPrefix(kv.Path, b.Path+"[") {
				skip = true
			}
		}
		if !skip {
			kvs = append(kvs, kv)
		}
	}
	kvs = append(kvs, bad...)
	return Build(kvs...)
}
