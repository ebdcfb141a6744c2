package yamlx

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

type placeCfg struct {
	NATS struct {
		URL string `yaml:"url"`
	} `yaml:"nats"`
	Consumer struct {
		AckWait   model.Duration `yaml:"ack_wait"`
		FetchSize int            `yaml:"fetch_size"`
	} `yaml:"consumer"`
	Sinks []struct {
		URL      config.URL     `yaml:"url"`
		Deadline model.Duration `yaml:"deadline"`
	} `yaml:"sinks"`
}

// TestPlacedAtTheNode: the case. A bad value whose text appears
// earlier is placed at its own key, by either decoder, and every problem
// is reported.
func TestPlacedAtTheNode(t *testing.T) {
	doc := []byte(`nats:
  url: "1"
consumer:
  ack_wait: 1
  fetch_size: many
  colour: blue
sinks:
  - url: "http://u:pw-secret@h st/"
    deadline: 1
`)
	want := []string{
		`line 4: consumer.ack_wait: not a valid duration string: "1"`,
		"line 5: consumer.fetch_size: cannot unmarshal !!str `many` into int",
		"line 6: consumer.colour: unknown key",
		"line 8: sinks[0].url: ",
		`line 9: sinks[0].deadline: not a valid duration string: "1"`,
	}
	var a placeCfg
	_, err := Decode(doc, &a)
	var b placeCfg
	errV2 := UnmarshalStrict(doc, &b)
	for _, err := range []error{err, errV2} {
		require.Error(t, err)
		lines := strings.Split(err.Error(), "\n")
		require.Len(t, lines, len(want), "%v", err)
		for i, w := range want {
			require.Contains(t, lines[i], w)
		}
		require.NotContains(t, err.Error(), "pw-secret")
		var le *LocatedError
		require.True(t, errors.As(err, &le))
	}
}

func TestDecodeOneParse(t *testing.T) {
	var c placeCfg
	d, err := Decode([]byte("sinks:\n  - url: http://h/\n  -\n  - deadline: 5s\n"), &c)
	require.NoError(t, err)
	require.Equal(t, []int{2, 3, 4}, d.ItemLines("sinks"))
	require.Len(t, c.Sinks, 3, "an empty item is kept, as yaml v2 keeps it")
	require.EqualError(t, d.Locate(errors.New("sinks[2].deadline: too long")), "line 4: sinks[2].deadline: too long")
}

// TestHideValues: a file of secrets shows no value in its problems.
func TestHideValues(t *testing.T) {
	var m map[string]struct {
		User string `yaml:"user"`
	}
	_, err := Decode([]byte("a:\n  user: [hunter2]\nb: hunter2\n"), &m, HideValues())
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
	require.Contains(t, err.Error(), "line 2: a.user: ")
	require.Contains(t, err.Error(), "line 3: b: ")
}

// TestAliasesBounded: aliases are not followed, so a document whose
// aliases repeat a subtree exponentially is placed quickly.
func TestAliasesBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("consumer:\n  ack_wait: 1\nx0: &a0 [1, 1, 1, 1, 1, 1, 1, 1]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "x%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	b.WriteString("sinks: [*a8]\n")
	start := time.Now()
	var c placeCfg
	err := UnmarshalStrict([]byte(b.String()), &c)
	require.Error(t, err)
	require.Contains(t, err.Error(), "line 2: consumer.ack_wait: ")
	require.Less(t, time.Since(start), 2*time.Second)
}
