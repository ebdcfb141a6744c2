package pipeline

import (
	"strings"
)

// words is a sensor name as the name patterns of the mapping files read
// it: lower case, one space between words, a word being a run of ASCII
// letters and digits that changes from lower to upper case nowhere inside.
// "CPU0_DTS" is "cpu0 dts", "Amb_Temp" "amb temp", "SystemBoardInletTemp"
// "system board inlet temp", "PS1-Inlet" "ps1 inlet". Patterns can then
// use \b around words whatever the vendor put between them (space,
// underscore, dash, dot or a change of case). A letter run and the digits
// after it stay one word ("cpu0", "fan1a") so numbers stay with what they
// number; "\bcpu\d*\b" matches both "CPU 1" and "CPU1".
func words(name string) string {
	var b strings.Builder
	b.Grow(len(name) + 4)
	prevLower := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z':
			prevLower = true
		case c >= 'A' && c <= 'Z':
			if prevLower {
				b.WriteByte(' ') // camelCase boundary
			}
			c += 'a' - 'A'
			prevLower = false
		case c >= '0' && c <= '9':
			// A digit keeps the word going, and an upper-case letter
			// after it too: "Fan1A" stays "fan1a".
			prevLower = false
		default:
			prevLower = false
			if b.Len() > 0 && !strings.HasSuffix(b.String(), " ") {
				b.WriteByte(' ')
			}
			continue
		}
		b.WriteByte(c)
	}
	return strings.TrimRight(b.String(), " ")
}

// naturalLess orders sensor ids the way a person counts: runs of digits
// compare as numbers ("Temperatures/2" before "Temperatures/10"), the rest
// byte by byte. It is the stable tie-break of label decisions.
func naturalLess(a, b string) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ca, cb := a[i], b[j]
		if isDigit(ca) && isDigit(cb) {
			si, sj := i, j
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			na := strings.TrimLeft(a[si:i], "0")
			nb := strings.TrimLeft(b[sj:j], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			continue
		}
		if ca != cb {
			return ca < cb
		}
		i++
		j++
	}
	return len(a)-i < len(b)-j
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// hasState reports whether the comma-separated state list holds name, as
// the IPMI source lists a discrete sensor's asserted states. It does not
// allocate.
func hasState(list, name string) bool {
	for list != "" {
		var item string
		item, list, _ = strings.Cut(list, ",")
		if strings.TrimSpace(item) == name {
			return true
		}
	}
	return false
}
