package yamlx

import (
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

func TestUnmarshalStrictLines(t *testing.T) {
	type cfg struct {
		A string         `yaml:"a"`
		D model.Duration `yaml:"d"`
	}
	var c cfg
	require.ErrorContains(t, UnmarshalStrict([]byte("a: x\nb: y\n"), &c), "line 2")
	require.ErrorContains(t, UnmarshalStrict([]byte("a: x\n# d: soon\nd: soon\n"), &c), "line 3")
	require.NoError(t, UnmarshalStrict([]byte("a: x\nd: 5s\n"), &c))
}

// TestLocateEmptyValue: a decoder's complaint about an empty string quotes
// nothing; it is placed at the empty value.
func TestLocateEmptyValue(t *testing.T) {
	type cfg struct {
		A string         `yaml:"a"`
		D model.Duration `yaml:"d"`
	}
	doc := []byte("a: x\nd: \"\"\n")
	var c cfg
	err := LocateErrors(doc, UnmarshalStrict(doc, &c))
	var le *LocatedError
	require.ErrorAs(t, err, &le)
	require.Equal(t, 2, le.Line)
	require.Equal(t, "d", le.Path)
	require.ErrorContains(t, err, "empty duration string")
}
