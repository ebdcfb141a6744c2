package main

import (
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/bmcstream/bmcstream/internal/testbed"
	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/stretchr/testify/require"
)

func TestConfigCheck(t *testing.T) {
	require.NoError(t, run([]string{"--bmcs=500", "--mix=ilo=2,openbmc=1", "--config.check"}))
	require.ErrorContains(t, run([]string{"--mix=hpe=1", "--config.check"}), `unknown personality "hpe"`)
	require.ErrorContains(t, run([]string{"--fault=fraction=0.1,blackhole", "--config.check"}), "blackhole")
	require.ErrorContains(t, run([]string{"--mockup.dir=x", "--config.check"}), "replays Redfish only")
}

// TestHelpExplainsFleetAndMockup keeps the --help text promised by the
// README: how to run a fleet and replay a mockup.
func TestHelpExplainsFleetAndMockup(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := testbed.Build(t, ".")
	out, err := exec.Command(bin, "--help").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, want := range []string{"--bmcs", "--mockup.dir", "--fault", "/faults", "inventory"} {
		require.Contains(t, string(out), want)
	}
}

// TestHelpListsPersonalitiesAndFaults keeps the help text in step with the
// code: every built-in personality and every fault key is named.
func TestHelpListsPersonalitiesAndFaults(t *testing.T) {
	ps, err := model.Builtin()
	require.NoError(t, err)
	for _, name := range model.Names(ps) {
		require.Contains(t, help, "\n  "+name+" ", "personality %s", name)
	}
	flat := strings.Join(strings.Fields(help), " ")
	ft := reflect.TypeOf(model.Faults{})
	for i := range ft.NumField() {
		key, _, _ := strings.Cut(ft.Field(i).Tag.Get("json"), ",")
		require.Regexp(t, ` `+key+`[,.]`, flat, "fault key %s", key)
	}
	require.NoError(t, run([]string{"--mix=ilo4=1,hgx=1,ami=1", "--fault=ids=bmc-00001,psu_failed=1", "--config.check"}))
}
