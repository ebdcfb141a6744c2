// Package compose carries the docker compose deployment of bmcstream: the
// compose file and the configuration files it mounts, embedded so that the
// process topology of cmd/demo runs from the very same files (changing only
// addresses), and the parsing both use.
//
// The files themselves live beside this source: docker-compose.yml,
// bmcstream/ (poller and gateway configurations), nats/, prometheus/
// (configuration, alert and recording rules and their tests), alertmanager/
// and grafana/ (provisioning and dashboards). docs/deploy.md describes them.
package compose

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed docker-compose.yml
//go:embed bmcstream/*.yml nats/nats-server.conf
//go:embed prometheus/prometheus.yml prometheus/rules/*.rules.yml
//go:embed alertmanager/alertmanager.yml
//go:embed grafana/dashboards/*.json
var files embed.FS

// FileName is the compose file, relative to this directory.
const FileName = "docker-compose.yml"

// Files returns the embedded deployment files, named by their path relative
// to deploy/compose (for example "bmcstream/gateway.yml").
func Files() fs.FS { return files }

// ReadFile returns one embedded deployment file.
func ReadFile(name string) ([]byte, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("deploy/compose: %w", err)
	}
	return b, nil
}

// Render returns the embedded file name with addresses replaced: every key
// of addrs (a host:port or URL as the compose network spells it, such as
// "nats://nats:4222") by its value. It is how the process topology reuses
// the compose stack's configuration, and nothing else may differ, so a key
// that does not occur in the file is an error: the file changed, and the
// caller must follow.
func Render(name string, addrs map[string]string) ([]byte, error) {
	b, err := ReadFile(name)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(addrs))
	for k := range addrs {
		keys = append(keys, k)
	}
	// Longest first, so that "http://prometheus:9090/api/v1/write" is
	// replaced before a shorter key that is part of it.
	sort.Slice(keys, func(i, j int) bool {
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) > len(keys[j])
		}
		return keys[i] < keys[j]
	})
	var errs []error
	for _, k := range keys {
		if !bytes.Contains(b, []byte(k)) {
			errs = append(errs, fmt.Errorf("render %s: address %q does not occur in it", name, k))
			continue
		}
		b = bytes.ReplaceAll(b, []byte(k), []byte(addrs[k]))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return b, nil
}

// Project is the part of a compose file bmcstream checks and uses: the
// services with their images, commands, mounts, health checks, restart
// policies, profiles and dependencies, the networks and the volumes. It is
// decoded strictly: a key it does not know is an error, except top-level
// extension fields (x-*), which compose itself ignores.
type Project struct {
	Name     string              `yaml:"name"`
	Services map[string]*Service `yaml:"services"`
	Networks map[string]*Network `yaml:"networks"`
	Volumes  map[string]*Volume  `yaml:"volumes"`
	// Extensions holds the top-level x-* fields (YAML anchors to share).
	Extensions map[string]any `yaml:",inline"`
}

// Service is one service of the compose file.
type Service struct {
	Image       string            `yaml:"image"`
	Build       *Build            `yaml:"build"`
	Command     []string          `yaml:"command"`
	Entrypoint  []string          `yaml:"entrypoint"`
	User        string            `yaml:"user"`
	Restart     string            `yaml:"restart"`
	ReadOnly    bool              `yaml:"read_only"`
	CapDrop     []string          `yaml:"cap_drop"`
	SecurityOpt []string          `yaml:"security_opt"`
	Profiles    []string          `yaml:"profiles"`
	Environment map[string]string `yaml:"environment"`
	// Volumes in the short syntax, SOURCE:TARGET[:MODE]: a named volume or
	// a bind mount of a path relative to the compose file.
	Volumes     []string                   `yaml:"volumes"`
	Ports       []string                   `yaml:"ports"`
	Networks    map[string]*ServiceNetwork `yaml:"networks"`
	DependsOn   Dependencies               `yaml:"depends_on"`
	Healthcheck *Healthcheck               `yaml:"healthcheck"`
}

// Build is a service's image build.
type Build struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

// ServiceNetwork attaches a service to a network.
type ServiceNetwork struct {
	IPv4Address string `yaml:"ipv4_address"`
}

// Dependency is one entry of depends_on in the long syntax.
type Dependency struct {
	Condition string `yaml:"condition"`
}

// Healthcheck is a service's health check.
type Healthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

// Network is a network of the compose file.
type Network struct {
	Name string `yaml:"name"`
	IPAM *struct {
		Config []struct {
			Subnet string `yaml:"subnet"`
		} `yaml:"config"`
	} `yaml:"ipam"`
}

// Volume is a named volume; bmcstream's use the defaults.
type Volume struct {
	Driver string `yaml:"driver"`
}

// Mount is one entry of a service's volumes.
type Mount struct {
	// Source is a named volume, or for a bind mount a path relative to
	// the compose file's directory (as written, "./" included).
	Source   string
	Target   string
	ReadOnly bool
	// Bind is true for a bind mount of a host path.
	Bind bool
}

// Mounts parses the service's volumes.
func (s *Service) Mounts() ([]Mount, error) {
	out := make([]Mount, 0, len(s.Volumes))
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !strings.HasPrefix(parts[1], "/") {
			return nil, fmt.Errorf("volume %q: want SOURCE:/TARGET[:ro|rw]", v)
		}
		m := Mount{Source: parts[0], Target: parts[1]}
		if len(parts) == 3 {
			switch parts[2] {
			case "ro":
				m.ReadOnly = true
			case "rw":
			default:
				return nil, fmt.Errorf("volume %q: mode %q is not ro or rw", v, parts[2])
			}
		}
		m.Bind = strings.HasPrefix(m.Source, ".") || strings.HasPrefix(m.Source, "/")
		out = append(out, m)
	}
	return out, nil
}

// LoadProject reads and parses the embedded compose file. lookup resolves
// the ${VAR} and ${VAR:-default} references as compose does from the
// environment; with a nil lookup every variable takes its default.
func LoadProject(lookup func(string) (string, bool)) (*Project, error) {
	b, err := ReadFile(FileName)
	if err != nil {
		return nil, err
	}
	return ParseProject(b, lookup)
}

// ParseProject parses a compose file, interpolating variables with lookup
// (nil: every variable takes its default).
func ParseProject(b []byte, lookup func(string) (string, bool)) (*Project, error) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	text, err := Interpolate(string(b), lookup)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	var p Project
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("parse %s: %w", FileName, err)
	}
	for k := range p.Extensions {
		if !strings.HasPrefix(k, "x-") {
			return nil, fmt.Errorf("parse %s: unknown top-level key %q", FileName, k)
		}
	}
	if len(p.Services) == 0 {
		return nil, fmt.Errorf("parse %s: no services", FileName)
	}
	return &p, nil
}

// Dependencies is a service's depends_on: the services it waits for and
// the condition of each.
type Dependencies map[string]Dependency

// UnmarshalYAML accepts depends_on as a list of service names (condition
// service_started) or as a map of names to their condition, decoded
// strictly.
func (d *Dependencies) UnmarshalYAML(n *yaml.Node) error {
	*d = Dependencies{}
	switch n.Kind {
	case yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, name := range names {
			(*d)[name] = Dependency{Condition: "service_started"}
		}
		return nil
	case yaml.MappingNode:
		var m map[string]yaml.Node
		if err := n.Decode(&m); err != nil {
			return err
		}
		for name, v := range m {
			var dep Dependency
			if err := v.Decode(&dep); err != nil {
				return fmt.Errorf("depends_on %s: %w", name, err)
			}
			for i := 0; i+1 < len(v.Content); i += 2 {
				switch v.Content[i].Value {
				case "condition", "restart", "required":
				default:
					return fmt.Errorf("line %d: depends_on %s: unknown key %q", v.Content[i].Line, name, v.Content[i].Value)
				}
			}
			(*d)[name] = dep
		}
		return nil
	}
	return fmt.Errorf("line %d: depends_on must be a list or a map", n.Line)
}

var varRE = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// Interpolate replaces $VAR, ${VAR}, ${VAR:-default} (default when unset or
// empty) and ${VAR-default} (default when unset) as compose does, and $$
// with $. An unset variable without a default becomes "", as in compose.
func Interpolate(s string, lookup func(string) (string, bool)) (string, error) {
	var err error
	out := varRE.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := varRE.FindStringSubmatch(m)
		name, op, def := sub[1], sub[2], sub[3]
		if name == "" {
			name = sub[4]
		}
		v, ok := lookup(name)
		switch {
		case op == ":-" && (!ok || v == ""):
			return def
		case op == "-" && !ok:
			return def
		}
		return v
	})
	if i := strings.Index(out, "${"); i >= 0 {
		err = fmt.Errorf("interpolate: unterminated or invalid variable at %q", out[i:min(len(out), i+30)])
	}
	return out, err
}

// ConfigPath returns where service mounts the host file (relative to the
// compose directory, as in the compose file, with "./" removed) that it
// sees at containerPath, or "" when no bind mount provides it. A file
// inside a mounted directory counts.
func (s *Service) ConfigPath(containerPath string) (string, error) {
	mounts, err := s.Mounts()
	if err != nil {
		return "", err
	}
	for _, m := range mounts {
		if !m.Bind {
			continue
		}
		src := path.Clean(m.Source)
		if containerPath == m.Target {
			return src, nil
		}
		if rest, ok := strings.CutPrefix(containerPath, strings.TrimSuffix(m.Target, "/")+"/"); ok {
			return path.Join(src, rest), nil
		}
	}
	return "", nil
}
