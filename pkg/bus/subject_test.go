package bus

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEscapeToken(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"srv-001", "srv-001"},
		{"10.0.0.5", "10_0_0_5"},
		{"10.0.0.5:623", "10_0_0_5~3A623"},
		{"node_1", "node~5F1"},
		{"fe80::1", "fe80~3A~3A1"},
		{"a*b>c", "a~2Ab~3Ec"},
		{"with space", "with~20space"},
		{"tilde~", "tilde~7E"},
		{"ünï", "~C3~BCn~C3~AF"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got := EscapeToken(tc.in)
			require.Equal(t, tc.want, got)
			require.False(t, strings.ContainsAny(got, ".*> \t"))
			back, err := UnescapeToken(got)
			require.NoError(t, err)
			require.Equal(t, tc.in, back)
		})
	}
}

func TestUnescapeTokenRejects(t *testing.T) {
	for _, bad := range []string{"", "a.b", "a*", "x~", "x~4", "x~zz", "x~41", "x~2E", "x~2e", "a b"} {
		t.Run(bad, func(t *testing.T) {
			_, err := UnescapeToken(bad)
			require.ErrorIs(t, err, ErrBadToken)
		})
	}
}

func TestSubjects(t *testing.T) {
	require.Equal(t, "bmc.v1.raw.10_0_0_5", RawSubject("10.0.0.5"))
	id, err := BMCFromRawSubject("bmc.v1.raw.10_0_0_5")
	require.NoError(t, err)
	require.Equal(t, "10.0.0.5", id)
	_, err = BMCFromRawSubject("bmc.v1.raw.a.b")
	require.Error(t, err)
	_, err = BMCFromRawSubject("bmc.v1.norm.x")
	require.Error(t, err)
	require.Equal(t, "bmc.v1.norm.ctc.i5.srv-1", NormSubject("ctc", "i5", "srv-1"))
	require.Equal(t, "bmc.v1.events._unknown._unknown.srv-1", EventSubject("", "", "srv-1"))
	require.Equal(t, "bmc.v1.norm.~5Funknown._unknown.x", NormSubject("_unknown", "", "x"))
	require.Equal(t, "p~5F1/42/10_0_0_1/7", MsgID("p_1", 42, "10.0.0.1", 7))
}

func FuzzEscapeRoundTrip(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "a_b", "~", "fe80::1%eth0", "", "\xff\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		tok := EscapeToken(id)
		if strings.ContainsAny(tok, ".*> \t\r\n") {
			t.Fatalf("token %q of %q is not a single literal subject token", tok, id)
		}
		if id == "" {
			return
		}
		back, err := UnescapeToken(tok)
		if err != nil {
			t.Fatalf("unescape %q (from %q): %v", tok, id, err)
		}
		if back != id {
			t.Fatalf("round trip %q → %q → %q", id, tok, back)
		}
	})
}

func FuzzUnescape(f *testing.F) {
	for _, s := range []string{"10_0_0_1", "a~5Fb", "~", "x~zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := UnescapeToken(tok)
		if err != nil {
			return
		}
		// Anything accepted must be canonical: escaping it gives tok back.
		if got := EscapeToken(id); got != tok {
			t.Fatalf("accepted non-canonical token %q (id %q escapes to %q)", tok, id, got)
		}
	})
}

func TestRawToken(t *testing.T) {
	for subject, want := range map[string]string{
		"bmc.v1.raw.10~2E0~2E0~2E1":    "10~2E0~2E0~2E1",
		"bmc.v1.raw.3.10~2E0~2E0~2E1":  "10~2E0~2E0~2E1",
		"bmc.v1.raw.12":                "12",
		"bmc.v1.raw.x.y":               "",
		"bmc.v1.raw.1.2.3":             "",
		"bmc.v1.raw.":                  "",
		"bmc.v1.raw.3.":                "",
		"bmc.v1.norm.a.b.c":            "",
		"bmc.v1.raw.99999999999.token": "",
	} {
		got, ok := RawToken(subject)
		require.Equal(t, want != "", ok, subject)
		require.Equal(t, want, got, subject)
	}
}
