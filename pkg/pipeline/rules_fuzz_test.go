package pipeline

import (
	"regexp"
	"strings"
	"testing"
)

// ruleBase stands for the built-in files behind a user's file: a unit, a
// kind default naming it, a rule. (Parsing the real ones on every input
// would make the target a hundred times slower.)
var ruleBase = RuleFile{Name: "base.yml", Data: []byte(`units:
  - {aliases: [W, Watts], kind: power, base: watts}
kinds:
  - {kind: power, default_unit: W, sensor_types: [Power]}
rules:
  - match: {name: '(?i)inlet'}
    set: {context: intake}
`)}

// FuzzParseRules feeds arbitrary mapping files (normalise.rule_files) to
// the rules parser, read before a base file as the gateway reads them
// before the built-in ones. It must never panic, and every problem must
// name the file and a line.
func FuzzParseRules(f *testing.F) {
	builtin, err := BuiltinRuleFiles()
	if err != nil {
		f.Fatal(err)
	}
	for _, b := range builtin {
		f.Add(b.Data)
	}
	for _, s := range []string{
		"rules:\n  - match: {name: '(unclosed'}\n    set: {drop: true}\n",
		"units:\n  - {aliases: [x], base: celsius, divide: 0}\n  - {aliases: [X], base: furlongs}\n",
		"kinds:\n  - {kind: fan, default_unit: Cel}\ncontexts:\n  entities:\n    - {entity: 300, context: attic}\n",
		"rules:\n  - match: {vendor: x, protocol: snmp}\n    set: {sensor: 'cpu$1', index_base: 2, multiply: .nan}\n",
		"chassis_faults:\n  - {info: x, kind: health}\nname_prefixes: ['']\n",
	} {
		f.Add([]byte(s))
	}
	where := regexp.MustCompile(`^read mapping file user\.yml(:\d+|: line \d+)`)
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := parseRules([]RuleFile{{Name: "user.yml", Data: b}, ruleBase})
		if err != nil {
			for _, l := range strings.Split(err.Error(), "\n") {
				if !where.MatchString(l) {
					t.Fatalf("a problem without its file and line: %q", l)
				}
			}
			return
		}
		if len(rs.rules) == 0 {
			t.Fatal("accepted rules lost the base file's")
		}
	})
}
