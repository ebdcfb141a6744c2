// Package yamlx decodes configuration strictly and makes sure every error
// names a line.
package yamlx

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v2"
)

// UnmarshalStrict decodes YAML with unknown keys as errors. yaml v2 gives
// most errors a line already ("line 3: field foo not found"); errors raised
// by custom unmarshalers (a bad duration, say) carry none, so for those the
// first line holding the offending quoted value is named instead.
func UnmarshalStrict(b []byte, v interface{}) error {
	err := yaml.UnmarshalStrict(b, v)
	if err == nil || strings.Contains(err.Error(), "line ") {
		return err
	}
	if line := locate(b, err.Error()); line > 0 {
		return fmt.Errorf("line %d: %w", line, err)
	}
	return err
}

var quoted = regexp.MustCompile(`"([^"]+)"`)

func locate(b []byte, msg string) int {
	for _, m := range quoted.FindAllStringSubmatch(msg, -1) {
		needle := []byte(m[1])
		for i, l := range bytes.Split(b, []byte("\n")) {
			if j := bytes.IndexByte(l, '#'); j >= 0 {
				l = l[:j]
			}
			if bytes.Contains(l, needle) {
				return i + 1
			}
		}
	}
	return 0
}
