package remotewrite

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v2"
)

// TestURLCredentialsRefused: as nats.url, a sink URL carries no user or
// password (URLs reach logs and errors); basic_auth and authorization
// hold them. The error names the host, never the password.
func TestURLCredentialsRefused(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://u:pw-secret@h/api/v1/write", false},
		{"http://u:@h:9090/api/v1/write", false},
		{"http://u@h:9090/api/v1/write", false},
		{"http://h:9090/api/v1/write", true},
		{"http://h:9090/api/v1/write?user=u", true},
	} {
		t.Run(tc.url, func(t *testing.T) {
			var c Config
			require.NoError(t, yaml.UnmarshalStrict([]byte("name: a\nurl: '"+tc.url+"'\n"), &c))
			err := c.Validate()
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, "url: credentials in the URL of h")
			require.ErrorContains(t, err, "basic_auth")
			require.NotContains(t, err.Error(), "pw-secret")
		})
	}
}
