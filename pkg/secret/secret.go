// Package secret holds credentials so that printing, logging or marshalling
// them never reveals them.
package secret

import (
	"fmt"
	"os"
	"strings"
)

// Redacted is what a Secret prints as.
const Redacted = "<secret>"

// Secret is a credential read from configuration. It prints, formats and
// marshals (YAML and JSON) as "<secret>"; only Reveal returns the value.
type Secret string

// String implements fmt.Stringer.
func (s Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer so %#v does not leak it either.
func (s Secret) GoString() string { return Redacted }

// Format implements fmt.Formatter: every verb, %s %v %q %x included, prints
// "<secret>".
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// MarshalYAML implements yaml.Marshaler.
func (s Secret) MarshalYAML() (interface{}, error) {
	if s == "" {
		return "", nil
	}
	return Redacted, nil
}

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte(`""`), nil
	}
	return []byte(`"` + Redacted + `"`), nil
}

// Reveal returns the credential itself, for handing to a protocol library.
func (s Secret) Reveal() string { return string(s) }

// FromFile reads a secret from a file, trimming one trailing newline. The
// error names the file but never its content.
func FromFile(path string) (Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret file %s: %w", path, err)
	}
	return Secret(strings.TrimRight(string(b), "\r\n")), nil
}
