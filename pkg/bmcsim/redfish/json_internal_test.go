package redfish

import (
	"encoding/json"
	"math"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestObjEncoding(t *testing.T) {
	tests := []struct {
		name string
		o    obj
		want string
	}{
		{"order kept", obj{}.add("b", 1).add("a", 2), `{"b":1,"a":2}`},
		{"vendor names unescaped", obj{}.add("Name", "08-P/S 1 <&>"), `{"Name":"08-P/S 1 <&>"}`},
		{"quotes and controls", obj{}.add("s", "a\"b\\c\n\t\x01"), `{"s":"a\"b\\c\n\t\u0001"}`},
		{"invalid UTF-8", obj{}.add("s", "a\xffb"), `{"s":"a\ufffdb"}`},
		{"numbers", obj{}.add("f", 21.7).add("i", -7).add("big", 1e21).add("nan", math.NaN()), `{"f":21.7,"i":-7,"big":1000000000000000000000,"nan":null}`},
		{"links and arrays", obj{}.add("l", link("/redfish/v1")).add("a", []any{link("/x"), "N/A", nil, true}).add("e", []obj{}),
			`{"l":{"@odata.id":"/redfish/v1"},"a":[{"@odata.id":"/x"},"N/A",null,true],"e":[]}`},
		{"addIf", obj{}.addIf(false, "a", 1).addIf(true, "b", 2), `{"b":2}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(tc.o.appendJSON(nil))
			require.Equal(t, tc.want, got)
			require.True(t, json.Valid([]byte(got)))
		})
	}
}

func TestEncodePatchesETag(t *testing.T) {
	body, etag := encode(obj{}.add("@odata.id", "/x").add("@odata.etag", etagSlot{}).add("Reading", 21.5))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(body, &doc))
	require.Equal(t, etag, doc["@odata.etag"])
	require.Regexp(t, `^"[0-9a-f]{16}"$`, etag)

	// A vendor string that looks like the placeholder is left alone.
	tricky := `"0000000000000000"`
	body, etag = encode(obj{}.add("Name", tricky).add("@odata.etag", etagSlot{}))
	require.NoError(t, json.Unmarshal(body, &doc))
	require.Equal(t, tricky, doc["Name"])
	require.Equal(t, etag, doc["@odata.etag"])

	other, etag2 := encode(obj{}.add("@odata.id", "/x").add("@odata.etag", etagSlot{}).add("Reading", 21.6))
	require.NotEqual(t, etag, etag2)
	require.NotEqual(t, string(body), string(other))
}

func TestETagMatches(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{"", false},
		{`"abc"`, true},
		{`W/"abc"`, true},
		{`"x", "abc"`, true},
		{`*`, true},
		{`"abd"`, false},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, etagMatches(tc.header, `"abc"`), tc.header)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "CPU1 Temp", "\x00\x1f\"\\", "a\xffb", "Ω€😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var back string
		require.NoError(t, json.Unmarshal(b, &back), "%q encoded as %s", s, b)
		if utf8.ValidString(s) {
			require.Equal(t, s, back)
		}
	})
}

func TestSensorIDs(t *testing.T) {
	tests := []struct{ name, want string }{
		{"System Board Inlet Temp", "SystemBoardInletTemp"},
		{"05-P2 DIMM 7-12", "05-P2DIMM7-12"},
		{"08-P/S 1", "08-PS1"},
		{"inlet_temp", "inlet_temp"},
		{"°C", "C"},
		{"***", "Sensor"},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, sensorID(tc.name), tc.name)
	}
}
