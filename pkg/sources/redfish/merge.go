package redfish

import (
	"math"
	"slices"
	"strings"
	"unicode"

	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// This file merges the readings of one poll so that each physical
// quantity yields one reading, when a chassis is read through several
// schemas (legacy Thermal and Power, the Sensors collection, the
// subsystems' excerpts). Readings of one group (see groupLegacy) are never
// merged with each other: one document lists distinct sensors, even when
// it names two alike. Across groups, two readings are one quantity when,
// in this order of trust:
//
//  1. links: one names the other (a Sensor's RelatedItem or an excerpt's
//     DataSourceUri is the other's id, or the resource holding the other,
//     an excerpt alone of its kind there), and both are of one kind;
//  2. member ids: both sit in one chassis, are of one kind, and their
//     member ids (MemberId, Id) are equal after normalising case and
//     separators, and neither is a bare number (a position, not an
//     identity), each the only one of its group with that id;
//  3. roles: both sit in one chassis and play one role (the chassis
//     power, a PSU's input or output power: sensor types PowerControl,
//     PowerSupplyInput, PowerSupplyOutput) under one name (the PSU's
//     label), each the only one of its group: the role and the PSU name
//     the quantity, whatever the values (two resources sampled apart);
//  4. names: both sit in one chassis, are of one kind and of compatible
//     units, their names are equal after normalising case and separators
//     and dropping a last word saying the kind or "reading", each is the
//     only one of its group with that name, and they agree: values within
//     the drift bound (closeValues: max(2 in the reading's unit, 5 %), two
//     copies read at two instants and rounded apart), or one set of
//     thresholds, at least one (sameThresholds: a BMC sets a sensor's
//     thresholds once);
//  5. qualified names: of what is still alone, one name is the other's
//     followed by words (less those saying the kind) that the other's
//     member id carries ("12V_HSS ECB Voltage Input" and the Sensor
//     "12V_HSS ECB" with Id ChassisVoltageRegulator0InputVoltage), one
//     chassis, one kind, compatible units, each the other's only such
//     candidate in its group, agreeing as in rule 4.
//
// Of the readings found to be one, the one carrying more is kept: more
// thresholds, then a PhysicalContext, then a unit, then the Sensor over
// the legacy member over the excerpt. It takes from the others what it
// lacks (context, unit, thresholds, parent, health) and, when another
// copy tells the reading's role (chassis power, a PSU's input or output),
// that role with its name and parent. Every other copy becomes a
// sources.Drop with reason merged, its id, and the kept reading's id as
// detail.

// mergeRule is the rule by which a reading was merged into another.
type mergeRule uint8

const (
	ruleNone mergeRule = iota // kept
	ruleLink
	ruleMember
	ruleRole
	ruleName
	ruleQualified
)

func (r mergeRule) String() string {
	switch r {
	case ruleLink:
		return "link"
	case ruleMember:
		return "member_id"
	case ruleRole:
		return "role"
	case ruleName:
		return "name"
	case ruleQualified:
		return "qualified_name"
	}
	return "none"
}

// mergeReadings merges rs (with ms beside them) in place and returns the
// readings kept, in their order, and a drop for each reading merged into
// another. merged, when not nil, receives for each reading the rule by
// which it was merged away (the rule that first joined it to another),
// ruleNone for a reading kept.
func mergeReadings(rs []v1.Reading, ms []meta, merged []mergeRule) ([]v1.Reading, []sources.Drop) {
	n := len(rs)
	if n < 2 {
		return rs, nil
	}
	parent := make([]int, n)
	mask := make([]uint8, n) // groups in each root's cluster
	for i := range parent {
		parent[i] = i
		mask[i] = 1 << ms[i].group
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	joined := make([]mergeRule, n) // the rule that first joined each reading
	union := func(i, j int, r mergeRule) {
		a, b := find(i), find(j)
		if a == b || mask[a]&mask[b] != 0 {
			return // one cluster holds one reading per group
		}
		for _, x := range []int{i, j} {
			if joined[x] == ruleNone {
				joined[x] = r
			}
		}
		if b < a {
			a, b = b, a
		}
		parent[b] = a
		mask[a] |= mask[b]
	}
	groups := 0
	for i := range ms {
		groups |= 1 << ms[i].group
	}
	if groups&(groups-1) == 0 {
		return rs, nil // one group: nothing to merge
	}

	// 1. Links.
	byID := make(map[string]int, n)
	for i := range rs {
		byID[rs[i].Id] = i
	}
	// An excerpt is also named by its resource (a Sensor's RelatedItem
	// naming the Fan whose SpeedPercent it is), when that resource holds
	// no other excerpt of the kind.
	byResource := map[string]int{}
	for i := range rs {
		if ms[i].group != groupExcerpt {
			continue
		}
		res, _, _ := strings.Cut(rs[i].Id, "#")
		key := res + "\x00" + rs[i].Kind.String()
		if _, dup := byResource[key]; dup {
			byResource[key] = -1
		} else {
			byResource[key] = i
		}
	}
	for i := range rs {
		for _, l := range ms[i].links {
			j, ok := byID[l]
			if !ok {
				j, ok = byResource[l+"\x00"+rs[i].Kind.String()]
			}
			if ok && j >= 0 && j != i && ms[j].group != ms[i].group && rs[j].Kind == rs[i].Kind {
				union(i, j, ruleLink)
			}
		}
	}

	// 2. Member ids, 3. roles, 4. names: candidates by key, one per
	// group, both ways (match), that agree.
	pair := func(r mergeRule, key func(i int) string, match, agree func(i, j int) bool) {
		buckets := map[string][]int{}
		for i := range rs {
			if k := key(i); k != "" {
				buckets[k] = append(buckets[k], i)
			}
		}
		for _, b := range buckets {
			if len(b) < 2 {
				continue
			}
			for x, i := range b {
				for _, j := range b[x+1:] {
					if ms[i].group == ms[j].group || !match(i, j) {
						continue
					}
					if only(b, i, ms[j].group, ms, match) == j && only(b, j, ms[i].group, ms, match) == i && agree(i, j) {
						union(i, j, r)
					}
				}
			}
		}
	}
	pair(ruleMember, func(i int) string {
		m := &ms[i]
		if m.member == "" || numeric(m.member) {
			return ""
		}
		return m.chassis + "\x00" + rs[i].Kind.String() + "\x00" + fold(m.member)
	}, always, always)
	pair(ruleRole, func(i int) string {
		if !role(rs[i].SensorType) {
			return ""
		}
		return ms[i].chassis + "\x00" + rs[i].SensorType + "\x00" + fold(rs[i].Name)
	}, always, always)
	pair(ruleName, func(i int) string {
		return ms[i].chassis + "\x00" + rs[i].Kind.String() + "\x00" + nameKey(rs[i].Name, rs[i].Kind)
	}, func(i, j int) bool {
		return unitsAgree(rs[i].Unit, rs[j].Unit)
	}, func(i, j int) bool {
		return closeValues(rs[i].Value, rs[j].Value) || sameThresholds(rs[i].Thresholds, rs[j].Thresholds)
	})

	// 5. Qualified names: what rule 4 left alone, when one name is the
	// other's followed by words its member id says ("12V_HSS ECB Voltage
	// Input" and the Sensor "12V_HSS ECB" whose Id is
	// ChassisVoltageRegulator0InputVoltage, beside its OutputVoltage).
	qualified(rs, ms, func(i, j int) bool { return mask[find(i)] == 1<<ms[i].group && mask[find(j)] == 1<<ms[j].group },
		func(i, j int) bool {
			return unitsAgree(rs[i].Unit, rs[j].Unit) &&
				(closeValues(rs[i].Value, rs[j].Value) || sameThresholds(rs[i].Thresholds, rs[j].Thresholds))
		}, func(i, j int) { union(i, j, ruleQualified) })

	// Keep one reading per cluster.
	kept := make([]int, n) // root -> kept index
	for i := range kept {
		kept[i] = -1
	}
	for i := range rs {
		r := find(i)
		if k := kept[r]; k < 0 || richer(&rs[i], &ms[i], &rs[k], &ms[k]) {
			kept[r] = i
		}
	}
	var drops []sources.Drop
	for i := range rs {
		k := kept[find(i)]
		if k != i {
			complete(&rs[k], &rs[i])
		}
	}
	for i := range rs {
		if k := kept[find(i)]; k != i {
			drops = append(drops, sources.Drop{Reason: sources.DropMerged, Name: rs[i].Name, ID: rs[i].Id, Detail: rs[k].Id})
			if merged != nil {
				merged[i] = joined[i]
			}
		}
	}
	// Compact in place once every id is read: a kept reading may move
	// over a copy's slot.
	out := rs[:0]
	for i := range rs {
		if kept[find(i)] == i {
			out = append(out, rs[i])
		}
	}
	return out, drops
}

// only returns the one reading of group g in b matching i, or -1 when
// there is none or several.
func only(b []int, i int, g uint8, ms []meta, match func(i, j int) bool) int {
	found := -1
	for _, j := range b {
		if j == i || ms[j].group != g || !match(i, j) {
			continue
		}
		if found >= 0 {
			return -1
		}
		found = j
	}
	return found
}

// fold normalises a name or id for comparison: lower case, letters and
// digits only ("CPU1 Temp", "cpu1_temp" and "CPU1Temp" are one).
func fold(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c > 127 {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// kindWords are the words a name may end with to say what it measures
// ("48-12V TMP ADC Temperature" is the Sensor "48-12V TMP ADC"), folded,
// longest first.
var kindWords = map[v1.Kind][]string{
	v1.Kind_KIND_TEMPERATURE: {"temperature", "temp"},
	v1.Kind_KIND_VOLTAGE:     {"voltage", "volts", "volt"},
	v1.Kind_KIND_CURRENT:     {"current"},
	v1.Kind_KIND_POWER:       {"power"},
	v1.Kind_KIND_FAN:         {"speed", "tach"},
}

// kindless removes from a folded name a last word saying its kind, unless
// nothing else is left.
func kindless(name string, k v1.Kind) string {
	for _, w := range kindWords[k] {
		if rest, ok := strings.CutSuffix(name, w); ok && rest != "" {
			return rest
		}
	}
	return name
}

// unitsAgree reports whether two units may be one quantity's: equal after
// folding their spellings, or one of them unknown.
func unitsAgree(a, b string) bool {
	ua, ub := unitKey(a), unitKey(b)
	return ua == "" || ub == "" || ua == ub
}

func unitKey(u string) string {
	switch strings.ToLower(strings.TrimSpace(u)) {
	case "":
		return ""
	case "%", "percent":
		return "%"
	case "cel", "c", "celsius":
		return "cel"
	case "rpm", "{rev}/min":
		return "rpm"
	case "w", "watts":
		return "w"
	case "v", "volts":
		return "v"
	case "a", "amps":
		return "a"
	}
	return strings.ToLower(u)
}

func always(int, int) bool { return true }

// qualified finds the pairs of rule 5: i and j of different groups, one
// chassis, one kind, both alone (alone), j's name words a prefix of i's,
// the rest of i's words (less words naming the kind) not empty and each a
// word of j's member id, each the other's only such candidate in its
// group, and agreeing (agree); it joins each pair found.
func qualified(rs []v1.Reading, ms []meta, alone, agree func(i, j int) bool, join func(i, j int)) {
	n := len(rs)
	name := make([][]string, n)
	member := make([][]string, n)
	for i := range rs {
		name[i], member[i] = words(rs[i].Name), words(ms[i].member)
	}
	cand := func(i, j int) bool {
		if ms[i].group == ms[j].group || ms[i].chassis != ms[j].chassis || rs[i].Kind != rs[j].Kind ||
			len(name[j]) == 0 || len(name[i]) <= len(name[j]) || !slices.Equal(name[i][:len(name[j])], name[j]) {
			return false
		}
		rest := 0
		for _, w := range name[i][len(name[j]):] {
			if slices.Contains(kindWords[rs[i].Kind], w) {
				continue
			}
			if !slices.Contains(member[j], w) {
				return false
			}
			rest++
		}
		return rest > 0 && alone(i, j) && agree(i, j)
	}
	// Candidates by chassis and kind only: names differ by design.
	type key struct {
		chassis string
		kind    v1.Kind
	}
	by := map[key][]int{}
	for i := range rs {
		k := key{ms[i].chassis, rs[i].Kind}
		by[k] = append(by[k], i)
	}
	for _, b := range by {
		for _, i := range b {
			var found []int
			for _, j := range b {
				if j != i && cand(i, j) {
					found = append(found, j)
				}
			}
			if len(found) != 1 {
				continue
			}
			j := found[0]
			// j's only candidate of i's group: no other reading of that
			// group qualifies j's name the same way.
			others := 0
			for _, x := range b {
				if x != i && ms[x].group == ms[i].group && cand(x, j) {
					others++
				}
			}
			if others == 0 {
				join(i, j)
			}
		}
	}
}

// words splits s into lower-case words at anything not a letter or a
// digit, between letters and digits, and at camelCase
// ("ChassisVoltageRegulator0InputVoltage": chassis, voltage, regulator,
// 0, input, voltage).
func words(s string) []string {
	var out []string
	rs := []rune(s)
	start := -1
	flush := func(end int) {
		if start >= 0 && end > start {
			out = append(out, strings.ToLower(string(rs[start:end])))
		}
		start = -1
	}
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush(i)
			continue
		}
		if start >= 0 {
			p := rs[i-1]
			switch {
			case unicode.IsDigit(r) != unicode.IsDigit(p),
				unicode.IsUpper(r) && unicode.IsLower(p),
				unicode.IsUpper(r) && unicode.IsUpper(p) && i+1 < len(rs) && unicode.IsLower(rs[i+1]):
				flush(i)
			}
		}
		if start < 0 {
			start = i
		}
	}
	flush(len(rs))
	return out
}

// nameKey is a name as the name rule compares it: folded (fold), without
// a last word saying its kind (kindless) or "reading".
func nameKey(name string, k v1.Kind) string {
	n := fold(name)
	if rest, ok := strings.CutSuffix(n, "reading"); ok && rest != "" {
		n = rest
	}
	return kindless(n, k)
}

// Drift bounds how far apart two copies of one reading may be when the
// name rule merges them: the BMC rounds one copy and samples each at its
// own instant (a legacy Thermal and a Sensor read a second or more apart),
// so values of one sensor differ by up to driftUnits in the reading's unit
// or driftFraction of the larger value, whichever is more.
const (
	driftUnits    = 2
	driftFraction = 0.05
)

// closeValues reports whether two values may be one sensor's: within the
// drift bound.
func closeValues(a, b float64) bool {
	return math.Abs(a-b) <= math.Max(driftUnits, driftFraction*math.Max(math.Abs(a), math.Abs(b)))
}

// sameThresholds reports whether two readings carry the same thresholds,
// at least one: a BMC sets a sensor's thresholds once, so one name with
// one set of thresholds is one sensor, whatever its two copies read at
// two instants.
func sameThresholds(a, b []v1.Threshold) bool {
	if len(a) == 0 || len(a) != len(b) {
		return false
	}
	for _, t := range a {
		if !slices.ContainsFunc(b, func(u v1.Threshold) bool { return u.Kind == t.Kind && u.Value == t.Value }) {
			return false
		}
	}
	return true
}

// richer reports whether reading a carries more than b: more thresholds,
// then a context, then a unit, then the better group.
func richer(a *v1.Reading, am *meta, b *v1.Reading, bm *meta) bool {
	if len(a.Thresholds) != len(b.Thresholds) {
		return len(a.Thresholds) > len(b.Thresholds)
	}
	if (a.Context != "") != (b.Context != "") {
		return a.Context != ""
	}
	if (a.Unit != "") != (b.Unit != "") {
		return a.Unit != ""
	}
	return groupRank(am.group) > groupRank(bm.group)
}

func groupRank(g uint8) int {
	switch g {
	case groupSensor:
		return 3
	case groupLegacy:
		return 2
	}
	return 1
}

// roles are the sensor types that say what a reading measures for the
// gateway (chassis power, a PSU's input or output).
func role(t string) bool {
	return t == sensorTypeChassisPower || t == sensorTypePSUInput || t == sensorTypePSUOutput
}

// complete fills what k lacks from d, a copy of the same reading.
func complete(k, d *v1.Reading) {
	if role(d.SensorType) && !role(k.SensorType) {
		k.SensorType, k.Name = d.SensorType, d.Name
		if d.Parent != "" {
			k.Parent = d.Parent
		}
	}
	if k.Context == "" {
		k.Context = d.Context
	}
	if k.Unit == "" {
		k.Unit = d.Unit
	}
	if len(k.Thresholds) == 0 && len(d.Thresholds) > 0 {
		k.Thresholds = append([]v1.Threshold(nil), d.Thresholds...)
	}
	if k.Parent == "" {
		k.Parent = d.Parent
	}
	if k.Health == v1.Health_HEALTH_UNSPECIFIED {
		k.Health = d.Health
	}
}
