package inventory

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/bmcstream/bmcstream/internal/yamlx"
	"github.com/bmcstream/bmcstream/pkg/secret"
)

// Credential is a user name and password for BMCs.
type Credential struct {
	Username string        `yaml:"username"`
	Password secret.Secret `yaml:"password,omitempty"`
	// PasswordFile is read on every lookup, so a rotated password is used
	// without a reload.
	PasswordFile string `yaml:"password_file,omitempty"`
}

// Credentials maps the names inventory entries use (their `credentials`
// field) to user names and passwords. The inventory never holds a secret.
//
// A name resolves, in order, from the environment
// (BMCSTREAM_CREDENTIALS_<NAME>_USERNAME and _PASSWORD, the name upper-cased
// with every character outside A-Z and 0-9 turned into '_'), then from the
// credentials file. Safe for concurrent use once loaded.
type Credentials struct {
	byName map[string]Credential
	getenv func(string) string
}

// LoadCredentials reads a credentials file (YAML, `name: {username,
// password | password_file}`), strictly. An empty path gives a store that
// only reads the environment.
func LoadCredentials(path string) (*Credentials, error) {
	if path == "" {
		return &Credentials{byName: map[string]Credential{}, getenv: os.Getenv}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	c, err := parseCredentials(b)
	if err != nil {
		return c, fmt.Errorf("credentials %s: %w", path, err)
	}
	return c, nil
}

// parseCredentials decodes and checks a credentials document; every
// problem names its line and entry, never a secret.
func parseCredentials(b []byte) (*Credentials, error) {
	c := &Credentials{byName: map[string]Credential{}, getenv: os.Getenv}
	// A decoding problem may quote the value it could not decode: in this
	// file that may be a password ("lab: hunter2"), so values are left out.
	d, err := yamlx.Decode(b, &c.byName, yamlx.HideValues())
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, name := range c.Names() {
		cr := c.byName[name]
		at := func(key, msg string) *yamlx.LocatedError {
			keys := []string{name}
			if key != "" {
				keys = append(keys, key)
			}
			line, p := d.Line(keys...)
			return &yamlx.LocatedError{Line: line, Path: p, Msg: msg}
		}
		if cr.Username == "" {
			errs = append(errs, at("username", "must be set"))
		}
		if (cr.Password == "") == (cr.PasswordFile == "") {
			errs = append(errs, at("", "set exactly one of password, password_file"))
		}
	}
	return c, errors.Join(errs...)
}

// Names returns the names the file defines, sorted.
func (c *Credentials) Names() []string {
	out := make([]string, 0, len(c.byName))
	for n := range c.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// EnvName is the environment variable prefix of a credentials name.
func EnvName(name string) string {
	var b strings.Builder
	b.WriteString("BMCSTREAM_CREDENTIALS_")
	for _, r := range strings.ToUpper(name) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Lookup returns the user name and password of a credentials name. Errors
// name the credentials, never their content.
func (c *Credentials) Lookup(name string) (string, secret.Secret, error) {
	env := EnvName(name)
	if u, p := c.getenv(env+"_USERNAME"), c.getenv(env+"_PASSWORD"); u != "" && p != "" {
		return u, secret.Secret(p), nil
	}
	cr, ok := c.byName[name]
	if !ok {
		return "", "", fmt.Errorf("credentials %q: not in the credentials file nor in %s_USERNAME/_PASSWORD", name, env)
	}
	if cr.PasswordFile != "" {
		p, err := secret.FromFile(cr.PasswordFile)
		if err != nil {
			return "", "", fmt.Errorf("credentials %q: %w", name, err)
		}
		return cr.Username, p, nil
	}
	return cr.Username, cr.Password, nil
}

// Check reports why an entry's credentials reference cannot be used, as
// Lookup would find it (environment first, then the file, a password_file
// read), under the key "credentials". It names the reference, never a
// secret.
func (c *Credentials) Check(name string) error {
	if name == "" {
		return errors.New("credentials: not set (neither by the entry nor by its file's defaults)")
	}
	env := EnvName(name)
	if c.getenv(env+"_USERNAME") != "" && c.getenv(env+"_PASSWORD") != "" {
		return nil
	}
	cr, ok := c.byName[name]
	if !ok {
		return fmt.Errorf("credentials: %q names no entry of the credentials file, and %s_USERNAME and _PASSWORD are not both set", name, env)
	}
	if cr.PasswordFile != "" {
		if _, err := secret.FromFile(cr.PasswordFile); err != nil {
			return fmt.Errorf("credentials: %q: %w", name, err)
		}
	}
	return nil
}
