package secret

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v2"
)

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("hunter2-distinctive")
	type wrap struct {
		Password Secret `yaml:"password" json:"password"`
	}
	w := wrap{Password: s}
	outs := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %s %q %x %#v %+v", s, s, s, s, s, w), fmt.Sprintf("%#v", w),
	}
	y, err := yaml.Marshal(w)
	require.NoError(t, err)
	j, err := json.Marshal(w)
	require.NoError(t, err)
	outs = append(outs, string(y), string(j))
	for _, o := range outs {
		require.NotContains(t, o, "hunter2")
	}
	require.Equal(t, "hunter2-distinctive", s.Reveal())

	var back wrap
	require.NoError(t, yaml.UnmarshalStrict([]byte("password: abc\n"), &back))
	require.Equal(t, "abc", back.Password.Reveal())
}

func TestFromFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(p, []byte("s3cret\n"), 0o600))
	s, err := FromFile(p)
	require.NoError(t, err)
	require.Equal(t, "s3cret", s.Reveal())
	_, err = FromFile(p + ".missing")
	require.ErrorContains(t, err, "pw.missing")
}
