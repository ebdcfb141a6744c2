package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/fleet"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// explainFleet starts one simulated BMC of a personality (or replaying a
// mockup directory, Redfish only) and returns it with a poller
// configuration reading its inventory.
func explainFleet(t *testing.T, personality, protocols, mockup string) (*testbed.Sim, *Config) {
	t.Helper()
	addrBlock.Lock()
	block := nextBlock
	nextBlock++
	addrBlock.Unlock()
	fc := fleet.DefaultConfig
	fc.Count = 1
	fc.Protocols = protocols
	if personality != "" {
		fc.Mix = map[string]int{personality: 1}
	}
	fc.MockupDir = mockup
	fc.FirstAddress = netip.MustParseAddr(fmt.Sprintf("127.%d.0.1", block))
	sim := testbed.StartSimFleet(t, fc, 10*time.Second)
	cfg, err := ParseConfig([]byte(fmt.Sprintf("inventory:\n  files: [%s]\n  credentials_file: %s\n", sim.InvFile, sim.CredFile)))
	require.NoError(t, err)
	return sim, cfg
}

// readingBlock is the text of one reading in Explain's text output: its
// row and sub-lines, up to the next reading's row.
func readingBlock(t *testing.T, out, protocol, name string) string {
	t.Helper()
	start := strings.Index(out, "== "+protocol+":")
	require.GreaterOrEqual(t, start, 0, "no %s section:\n%s", protocol, out)
	section := out[start:]
	if end := strings.Index(section[3:], "\n== "); end >= 0 {
		section = section[:end+3]
	}
	row := regexp.MustCompile(`(?m)^   \d+ +` + regexp.QuoteMeta(name) + `  .*\n((?: {5,}[^ 0-9].*\n)*)`)
	m := row.FindString(section)
	require.NotEmpty(t, m, "no reading %q in the %s section:\n%s", name, protocol, section)
	return m
}

// TestExplainBothProtocols explains a simulated iLO polled over Redfish and
// IPMI, with a mapping file of the user's: each reading shows its series
// or why it has none (the user's drop, the normaliser's duplicate), the
// readings the source left out are listed (the iLO lists an empty DIMM
// bank and fan bay as Absent), the summary counts them, both sessions are
// closed afterwards, and the password appears nowhere, not even in the
// debug log.
func TestExplainBothProtocols(t *testing.T) {
	t.Parallel()
	sim, cfg := explainFleet(t, "ilo", "both", "")
	id := sim.Fleet.Members[0].BMC.ID
	rules := filepath.Join(t.TempDir(), "site.yml")
	require.NoError(t, os.WriteFile(rules, []byte("rules:\n  - match: {protocol: redfish, name: '^07-Exhaust$'}\n    set: {drop: true}\n"), 0o600))
	var logs lockedLog
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	var out bytes.Buffer
	require.NoError(t, Explain(context.Background(), cfg, id, &out, ExplainOptions{RuleFiles: []string{rules}, Logger: logger}))
	text := out.String()
	t.Log(text)
	require.Contains(t, text, "BMC "+id+" at "+sim.Fleet.Members[0].Addr.String()+", protocol both (prefer redfish)")
	require.Contains(t, text, "mapping files: "+rules+", built-in")

	inlet := readingBlock(t, text, "redfish", "01-Inlet Ambient")
	require.Regexp(t, `temperature +Temperatures +[0-9.]+ +Cel +Intake +ok +Enabled`, inlet)
	require.Contains(t, inlet, "id /redfish/v1/Chassis/1/Thermal#/Temperatures/0; thresholds upper_critical=42 upper_fatal=46")
	require.Regexp(t, `series bmc_temperature_celsius\{bmc="`+id+`",context="intake",[^}]*sensor="intake",[^}]*\}\n`, inlet)
	require.Contains(t, inlet, "why temperature as temperature; context intake")

	exhaust := readingBlock(t, text, "redfish", "07-Exhaust")
	require.Contains(t, exhaust, "dropped rule_drop: ")
	require.NotContains(t, exhaust, "series ")

	power := readingBlock(t, text, "ipmi", "Server Power")
	require.Contains(t, power, "dropped duplicate: a second reading of the chassis power")
	require.Contains(t, power, "(fed by redfish while it answers)", "the health it lends is Redfish's while Redfish answers")

	require.Regexp(t, `(?m)^   left out by the redfish source \(2\):\n   REASON +NAME +ID +DETAIL\n`, text)
	require.Regexp(t, `(?m)^   absent +05-P2 DIMM 7-12 +/redfish/v1/Chassis/1/Thermal#/Temperatures/4 +state Absent$`, text)
	require.Regexp(t, `(?m)^   absent +Fan 5 +/redfish/v1/Chassis/1/Thermal#/Fans/4 +state Absent$`, text)
	require.Regexp(t, `(?m)^  redfish: up, \d+ readings, \d+ series; normaliser dropped 1 \(rule_drop 1\); source left out 2 \(absent 2\)$`, text)
	require.Regexp(t, `(?m)^  ipmi: up, \d+ readings, \d+ series; normaliser dropped 1 \(duplicate 1\); source left out 0$`, text)

	rf, ipmi := sim.Fleet.SessionCounts(id)
	require.Zero(t, rf, "Redfish session logged out")
	require.Zero(t, ipmi, "IPMI session closed")
	require.NotEmpty(t, logs.String(), "the sources logged at debug level")
	for _, s := range []string{text, logs.String()} {
		require.NotContains(t, s, fleet.DefaultConfig.Password)
	}

	// The JSON form says the same, and its counts add up.
	out.Reset()
	require.NoError(t, Explain(context.Background(), cfg, id, &out, ExplainOptions{RuleFiles: []string{rules}, Format: ExplainJSON}))
	require.NotContains(t, out.String(), fleet.DefaultConfig.Password)
	var rep ExplainReport
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	require.Equal(t, id, rep.BMC)
	require.Len(t, rep.Polls, 2)
	for _, p := range rep.Polls {
		require.True(t, p.Up, p.Protocol)
		require.Equal(t, len(p.Readings), p.Summary.Readings)
		dropped := map[string]int{}
		series := map[string]bool{}
		for _, r := range p.Readings {
			if r.Dropped != "" {
				dropped[r.Dropped]++
			} else {
				require.NotEmpty(t, r.Series, "%s %s: neither series nor a reason", p.Protocol, r.Name)
			}
			for _, s := range r.Series {
				series[s] = true
			}
		}
		require.Equal(t, dropped, p.Summary.Dropped, p.Protocol)
		require.Equal(t, len(series), p.Summary.Series, p.Protocol)
		require.Len(t, p.SourceDrops, sumCounts(p.Summary.SourceDrops), p.Protocol)
	}
	require.Equal(t, []SourceDrop{
		{Reason: sources.DropAbsent, Name: "05-P2 DIMM 7-12", ID: "/redfish/v1/Chassis/1/Thermal#/Temperatures/4", Detail: "state Absent"},
		{Reason: sources.DropAbsent, Name: "Fan 5", ID: "/redfish/v1/Chassis/1/Thermal#/Fans/4", Detail: "state Absent"},
	}, rep.Polls[0].SourceDrops)
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestExplainFailures: a BMC not in the inventory is an error naming the
// inventory files read, before anything is written; a BMC that does not
// answer is reported, class and text, and is an error; a bad format or
// mapping file is an error. No error or output carries the password.
func TestExplainFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	invFile, credFile := filepath.Join(dir, "inventory.yml"), filepath.Join(dir, "credentials.yml")
	const password = "pw-3xplain-secret"
	require.NoError(t, os.WriteFile(credFile, []byte("lab:\n  username: u\n  password: "+password+"\n"), 0o600))
	b, err := inventory.Marshal([]inventory.BMC{
		{ID: "dead", Address: "127.0.0.1", Protocol: inventory.Redfish, RedfishScheme: "http", RedfishPort: testbed.FreePort(t), Credentials: "lab", Interval: inventory.MinInterval},
		{ID: "nocreds", Address: "127.0.0.1", Protocol: inventory.Redfish, Credentials: "other", Interval: inventory.MinInterval},
	})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(invFile, b, 0o600))
	cfg, err := ParseConfig([]byte(fmt.Sprintf("inventory:\n  files: [%s]\n  credentials_file: %s\n", invFile, credFile)))
	require.NoError(t, err)

	for _, tc := range []struct {
		name, id string
		opts     ExplainOptions
		err      string // a substring of the error
		out      string // a substring of the output; "" for none at all
	}{
		{name: "unknown id", id: "srv-9", err: `bmc "srv-9" is not in the inventory (read ` + invFile + `)`},
		{name: "unknown credentials", id: "nocreds", err: `bmc nocreds: credentials "other"`},
		{name: "bad format", id: "dead", opts: ExplainOptions{Format: "yaml"}, err: `format "yaml" is not one of text, json`},
		{name: "missing mapping file", id: "dead", opts: ExplainOptions{RuleFiles: []string{filepath.Join(dir, "none.yml")}}, err: "read mapping file"},
		{name: "not answering", id: "dead", err: "bmc dead: redfish did not answer: unreachable: ",
			out: "== redfish: down in "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Explain(context.Background(), cfg, tc.id, &out, tc.opts)
			require.ErrorContains(t, err, tc.err)
			require.NotContains(t, err.Error(), password)
			require.NotContains(t, out.String(), password)
			if tc.out == "" {
				require.Empty(t, out.String())
				return
			}
			require.Contains(t, out.String(), tc.out)
			require.Contains(t, out.String(), "   error (unreachable): unreachable: ")
			require.Contains(t, out.String(), "  redfish: down, 0 readings, 0 series; normaliser dropped 0; source left out 0; error unreachable")
		})
	}
}

// TestExplainCapture replays a capture of a real BMC (an iDRAC 9 of a
// PowerEdge R750, internal/corpus) through bmcsim and explains it: the
// chassis' board inlet is the room's intake, and every reading has series
// or a reason.
func TestExplainCapture(t *testing.T) {
	t.Parallel()
	sim, cfg := explainFleet(t, "", "redfish", "../../internal/corpus/testdata/redfish/dell-poweredge-r750-idrac9-6.00")
	id := sim.Fleet.Members[0].BMC.ID
	var out bytes.Buffer
	require.NoError(t, Explain(context.Background(), cfg, id, &out, ExplainOptions{Format: ExplainJSON}))
	var rep ExplainReport
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	require.Len(t, rep.Polls, 1)
	p := rep.Polls[0]
	require.True(t, p.Up)
	require.Equal(t, "Dell Inc.", p.Info["vendor"])
	require.Greater(t, p.Summary.Readings, 20)
	var inlet *ExplainedReading
	for i, r := range p.Readings {
		require.True(t, r.Dropped != "" || len(r.Series) > 0, "%s: neither series nor a reason", r.Name)
		if r.Name == "System Board Inlet Temp" {
			inlet = &p.Readings[i]
		}
	}
	require.NotNil(t, inlet, "the capture's inlet sensor")
	require.Equal(t, "temperature", inlet.Kind)
	require.Contains(t, inlet.Series, `bmc_temperature_celsius{bmc="`+id+`",context="intake",position="1",rack="r000",room="hall1",row="row00",sensor="intake",site="sim"}`)
	require.Empty(t, inlet.Dropped)
}

// TestRedfishSchemaFromInventory: the inventory's redfish_schema reaches
// the Redfish source through DefaultSources. A simulated iDRAC offers both
// generations: auto reads both and merges their copies of each sensor;
// legacy reads Thermal and Power only; modern the Sensors collection only.
// A source holds its session until closed.
func TestRedfishSchemaFromInventory(t *testing.T) {
	t.Parallel()
	sim, cfg := explainFleet(t, "idrac", "redfish", "")
	inv, creds, err := loadInventory(cfg)
	require.NoError(t, err)
	entry := inv.All()[0]
	user, pw, err := creds.Lookup(entry.Credentials)
	require.NoError(t, err)

	collect := func(schema string) (ids []string, drops map[string]int) {
		t.Helper()
		e := entry
		e.RedfishSchema = schema
		drops = map[string]int{}
		f := sourceFactory(cfg, slog.New(slog.DiscardHandler), func(p v1.Protocol, d sources.Drop) {
			require.Equal(t, v1.Protocol_PROTOCOL_REDFISH, p)
			drops[d.Reason]++
		})
		src, err := f(e, v1.Protocol_PROTOCOL_REDFISH, user, pw)
		require.NoError(t, err)
		snap := &v1.Snapshot{}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, src.Collect(ctx, snap))
		rf, _ := sim.Fleet.SessionCounts(e.ID)
		require.Equal(t, 1, rf, "a session is open until Close")
		require.NoError(t, src.Close(ctx))
		rf, _ = sim.Fleet.SessionCounts(e.ID)
		require.Zero(t, rf)
		for _, r := range snap.Readings {
			ids = append(ids, r.Id)
		}
		require.NotEmpty(t, ids)
		return ids, drops
	}
	legacy := func(id string) bool { return strings.Contains(id, "/Thermal#/") || strings.Contains(id, "/Power#/") }
	count := func(ids []string, f func(string) bool) int {
		n := 0
		for _, id := range ids {
			if f(id) {
				n++
			}
		}
		return n
	}

	autoIDs, autoDrops := collect("")
	require.Positive(t, autoDrops[sources.DropMerged], "auto reads both generations and merges")
	namedIDs, namedDrops := collect(inventory.SchemaAuto)
	require.ElementsMatch(t, autoIDs, namedIDs, "auto is the default")
	require.Equal(t, autoDrops, namedDrops)

	ids, drops := collect(inventory.SchemaLegacy)
	require.Equal(t, len(ids), count(ids, legacy), "legacy reads Thermal and Power only: %q", ids)
	require.Zero(t, drops[sources.DropMerged])

	ids, drops = collect(inventory.SchemaModern)
	require.Zero(t, count(ids, legacy), "modern reads no legacy array: %q", ids)
	require.Zero(t, drops[sources.DropMerged])
}

// TestSameTargetSchema: a changed redfish_schema restarts the BMC's
// sources (a reload applies it), like any other change of how it is read.
func TestSameTargetSchema(t *testing.T) {
	a := inventory.BMC{ID: "a", Address: "x", Protocol: inventory.Redfish}
	b := a
	require.True(t, sameTarget(a, b))
	b.RedfishSchema = inventory.SchemaLegacy
	require.False(t, sameTarget(a, b))
}

// TestExplainValues: raw values print as the BMC sent them, and JSON
// carries the non-finite ones as strings rather than failing.
func TestExplainValues(t *testing.T) {
	for _, tc := range []struct {
		v          float64
		text, json string
	}{
		{0, "0", "0"},
		{21.4, "21.4", "21.4"},
		{-58, "-58", "-58"},
		{123456789, "123456789", "123456789"},
		{1e20, "1e+20", "1e+20"},
		{0.00001, "1e-05", "1e-05"},
		{math.NaN(), "NaN", `"NaN"`},
		{math.Inf(1), "+Inf", `"+Inf"`},
		{math.Inf(-1), "-Inf", `"-Inf"`},
	} {
		require.Equal(t, tc.text, formatValue(tc.v))
		b, err := json.Marshal(explainValue(tc.v))
		require.NoError(t, err)
		require.Equal(t, tc.json, string(b))
	}
}
