package ipmi

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// TestDiscreteState checks the naming of asserted states (Tables 42-2 and
// 42-3), the "absent" marker and the health every state implies.
func TestDiscreteState(t *testing.T) {
	const (
		psu  = sensorTypePowerSupply
		cpu  = sensorTypeProcessor
		mem  = sensorTypeMemory
		slot = sensorTypeDriveSlot
		ss   = readingTypeSensorSpecific
	)
	tests := []struct {
		name                    string
		sensorType, readingType uint8
		mask, states            uint16
		want                    string
		health                  v1.Health
	}{
		{"psu present", psu, ss, 0x000F, 0x0001, "presence_detected", v1.Health_HEALTH_OK},
		{"psu failed", psu, ss, 0x000F, 0x0003, "presence_detected,failure_detected", v1.Health_HEALTH_CRITICAL},
		{"psu input lost", psu, ss, 0x000F, 0x0009, "presence_detected,input_lost", v1.Health_HEALTH_CRITICAL},
		{"psu predictive", psu, ss, 0x000F, 0x0005, "presence_detected,predictive_failure", v1.Health_HEALTH_WARNING},
		{"psu out of range", psu, ss, 0x00FF, 0x0021, "presence_detected,input_out_of_range", v1.Health_HEALTH_WARNING},
		{"psu all", psu, ss, 0x00FF, 0x00FF, "presence_detected,failure_detected,predictive_failure,input_lost," +
			"input_lost_or_out_of_range,input_out_of_range,configuration_error,inactive", v1.Health_HEALTH_CRITICAL},
		{"psu absent", psu, ss, 0x000F, 0x0000, "absent", v1.Health_HEALTH_OK},
		{"psu cannot tell presence", psu, ss, 0x000E, 0x0000, "", v1.Health_HEALTH_OK},
		{"psu absent and failed", psu, ss, 0x000F, 0x0002, "failure_detected,absent", v1.Health_HEALTH_CRITICAL},
		{"psu beyond the table", psu, ss, 0x000F, 0x0101, "presence_detected,state_8", v1.Health_HEALTH_OK},
		{"cpu present", cpu, ss, 0x0083, 0x0080, "presence_detected", v1.Health_HEALTH_OK},
		{"cpu ierr", cpu, ss, 0x0083, 0x0081, "ierr,presence_detected", v1.Health_HEALTH_CRITICAL},
		{"cpu frb2", cpu, ss, 0x0083, 0x0088, "frb2_hang,presence_detected", v1.Health_HEALTH_CRITICAL},
		{"cpu throttled", cpu, ss, 0x0483, 0x0480, "presence_detected,throttled", v1.Health_HEALTH_WARNING},
		{"cpu machine checks", cpu, ss, 0x1880, 0x1880, "presence_detected,uncorrectable_machine_check,correctable_machine_check", v1.Health_HEALTH_CRITICAL},
		{"cpu empty socket", cpu, ss, 0x0080, 0x0000, "absent", v1.Health_HEALTH_OK},
		{"dimm correctable", mem, ss, 0x0043, 0x0041, "correctable_ecc,presence_detected", v1.Health_HEALTH_OK},
		{"dimm ecc limit", mem, ss, 0x0063, 0x0060, "correctable_ecc_limit,presence_detected", v1.Health_HEALTH_WARNING},
		{"dimm uncorrectable", mem, ss, 0x0043, 0x0002, "uncorrectable_ecc,absent", v1.Health_HEALTH_CRITICAL},
		{"dimm hot", mem, ss, 0x0440, 0x0440, "presence_detected,critical_overtemperature", v1.Health_HEALTH_CRITICAL},
		{"drive fault", slot, ss, 0x0003, 0x0003, "drive_presence,drive_fault", v1.Health_HEALTH_CRITICAL},
		{"drive rebuild", slot, ss, 0x01FF, 0x00A1, "drive_presence,in_critical_array,rebuild", v1.Health_HEALTH_WARNING},
		{"drive bay empty", slot, ss, 0x0001, 0x0000, "absent", v1.Health_HEALTH_OK},
		{"fully redundant", 0x04, readingTypeRedundancy, 0x00FF, 0x0001, "fully_redundant", v1.Health_HEALTH_OK},
		{"redundancy lost", 0x04, readingTypeRedundancy, 0x00FF, 0x0002, "redundancy_lost", v1.Health_HEALTH_CRITICAL},
		{"redundancy degraded", 0x08, readingTypeRedundancy, 0x00FF, 0x0004, "redundancy_degraded", v1.Health_HEALTH_WARNING},
		{"non-redundant sufficient", 0x09, readingTypeRedundancy, 0x00FF, 0x0008, "non_redundant_sufficient", v1.Health_HEALTH_WARNING},
		{"non-redundant from insufficient", 0x09, readingTypeRedundancy, 0x00FF, 0x0010, "non_redundant", v1.Health_HEALTH_WARNING},
		{"non-redundant insufficient", 0x09, readingTypeRedundancy, 0x00FF, 0x0020, "non_redundant_insufficient", v1.Health_HEALTH_CRITICAL},
		{"degraded from full", 0x04, readingTypeRedundancy, 0x00FF, 0x0040, "redundancy_degraded_from_full", v1.Health_HEALTH_WARNING},
		{"degraded from non-redundant", 0x04, readingTypeRedundancy, 0x00FF, 0x0080, "redundancy_degraded_from_non_redundant", v1.Health_HEALTH_WARNING},
		{"device absent", 0x25, readingTypePresence, 0x0003, 0x0001, "device_absent", v1.Health_HEALTH_OK},
		{"device present", 0x25, readingTypePresence, 0x0003, 0x0002, "device_present", v1.Health_HEALTH_OK},
		{"unknown table", 0x12, ss, 0x7FFF, 0x4005, "state_0,state_2,state_14", v1.Health_HEALTH_OK},
		{"oem reading type", psu, 0x70, 0x000F, 0x0002, "state_1", v1.Health_HEALTH_OK},
		{"nothing asserted", 0x04, readingTypeRedundancy, 0x00FF, 0, "", v1.Health_HEALTH_OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, h := discreteState(tc.sensorType, tc.readingType, tc.mask, tc.states)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.health, h)
		})
	}
}

// TestDiscreteReadingAllocs checks that a discrete sensor whose states do
// not change costs no allocation, and that a change is seen at once.
func TestDiscreteReadingAllocs(t *testing.T) {
	rec := compactRecord(0x60, sensorTypePowerSupply, readingTypeSensorSpecific, 0x0A, 1, 0x000F, "PS1 Status")
	ss, skip, err := decodeRecord(rec)
	require.NoError(t, err)
	require.Equal(t, skipDiscrete, skip)
	sn := &ss[0]
	require.Equal(t, uint16(0x000F), sn.stateMask)
	var snap v1.Snapshot
	for range 8 {
		appendReading(&snap, sn, reading{})
	}
	present := []byte{0x00, 0xC0, 0x01, 0x80}
	allocs := testing.AllocsPerRun(100, func() {
		snap.Readings = snap.Readings[:0]
		for range 8 {
			rd, err := decodeReading(present)
			if err != nil {
				t.Fatal(err)
			}
			appendReading(&snap, sn, rd)
		}
	})
	require.Zero(t, allocs)
	r := snap.Readings[7]
	require.Equal(t, v1.Kind_KIND_DISCRETE, r.Kind)
	require.Equal(t, 1.0, r.Value)
	require.Equal(t, "presence_detected", r.State)
	require.Equal(t, v1.Health_HEALTH_OK, r.Health)

	rd, err := decodeReading([]byte{0x00, 0xC0, 0x03, 0x80})
	require.NoError(t, err)
	snap.Readings = snap.Readings[:0]
	appendReading(&snap, sn, rd)
	require.Equal(t, "presence_detected,failure_detected", snap.Readings[0].State)
	require.Equal(t, v1.Health_HEALTH_CRITICAL, snap.Readings[0].Health)
	require.Equal(t, 3.0, snap.Readings[0].Value)
}

// compactRecord encodes a Compact Sensor Record (§43.2) of one discrete
// sensor, independently of the decoder under test.
func compactRecord(number, sensorType, readingType, entity, instance uint8, mask uint16, id string) []byte {
	rec := make([]byte, 32+len(id))
	rec[2], rec[3], rec[4] = 0x51, 0x02, byte(len(rec)-5)
	rec[5], rec[7] = 0x20, number
	rec[8], rec[9] = entity, instance
	rec[12], rec[13] = sensorType, readingType
	rec[14], rec[15] = byte(mask), byte(mask>>8) // assertion event mask
	rec[18], rec[19] = byte(mask), byte(mask>>8) // reading mask
	rec[31] = 0xC0 | byte(len(id))
	copy(rec[32:], id)
	return rec
}

// TestDiscreteFaults polls a bmcsim BMC while its PSU 2 fails, PSU 1 loses
// its input and the fans lose redundancy: the readings say so by name and
// health, and turn healthy again when the faults clear.
func TestDiscreteFaults(t *testing.T) {
	at := testInstant()
	s := startSim(t, "idrac", func() time.Time { return at })
	src := newSource(t, s.target(), Options{Now: func() time.Time { return at }})
	ctx := context.Background()
	byName := func(snap *v1.Snapshot) map[string]v1.Reading {
		out := map[string]v1.Reading{}
		for _, r := range snap.Readings {
			if r.Kind == v1.Kind_KIND_DISCRETE {
				out[r.Name] = r
			}
		}
		return out
	}
	snap, _, err := collect(t, ctx, src, s)
	require.NoError(t, err)
	healthy := byName(snap)
	require.Len(t, healthy, len(s.b.Personality.Discrete()))

	s.b.SetFaults(model.Faults{PSUFailed: 2, PSUInputLost: 1, FanRedundancyLost: true})
	snap, _, err = collect(t, ctx, src, s)
	require.NoError(t, err)
	got := byName(snap)
	type want struct {
		value  float64
		state  string
		health v1.Health
	}
	for name, w := range map[string]want{
		"PS1 Status":     {0b1001, "presence_detected,input_lost", v1.Health_HEALTH_CRITICAL},
		"PS2 Status":     {0b0011, "presence_detected,failure_detected", v1.Health_HEALTH_CRITICAL},
		"CPU1 Status":    {0x80, "presence_detected", v1.Health_HEALTH_OK},
		"Fan Redundancy": {0b10, "redundancy_lost", v1.Health_HEALTH_CRITICAL},
	} {
		r, ok := got[name]
		require.True(t, ok, name)
		require.Equal(t, w.value, r.Value, name)
		require.Equal(t, w.state, r.State, name)
		require.Equal(t, w.health, r.Health, name)
		require.Equal(t, "", r.Unit, name)
	}
	require.Equal(t, "Power Supply", got["PS2 Status"].SensorType)
	require.Equal(t, uint32(0x0A), got["PS2 Status"].EntityId)
	require.Equal(t, uint32(2), got["PS2 Status"].EntityInstance)
	require.Equal(t, "Fan", got["Fan Redundancy"].SensorType)

	s.b.SetFaults(model.Faults{})
	snap, _, err = collect(t, ctx, src, s)
	require.NoError(t, err)
	require.Equal(t, healthy, byName(snap))
}

// TestDrops checks that every reading a BMC lists but a poll leaves out is
// counted by reason and handed to OnDrop, once per poll, and that a BMC
// without such readings counts none.
func TestDrops(t *testing.T) {
	at := testInstant()
	t.Run("healthy", func(t *testing.T) {
		s := startSim(t, "xcc", func() time.Time { return at })
		var got []sources.Drop
		src := newSource(t, s.target(), Options{Now: func() time.Time { return at }, OnDrop: func(d sources.Drop) { got = append(got, d) }})
		for range 2 {
			_, _, err := collect(t, context.Background(), src, s)
			require.NoError(t, err)
		}
		require.Empty(t, got)
		require.Empty(t, src.Dropped())
	})
	t.Run("discrete skipped", func(t *testing.T) {
		s := startSim(t, "xcc", func() time.Time { return at })
		var got []sources.Drop
		src := newSource(t, s.target(), Options{SkipDiscrete: true, Now: func() time.Time { return at },
			OnDrop: func(d sources.Drop) { got = append(got, d) }})
		n := len(s.b.Personality.Discrete())
		for poll := 1; poll <= 2; poll++ {
			snap, _, err := collect(t, context.Background(), src, s)
			require.NoError(t, err)
			for _, r := range snap.Readings {
				require.NotEqual(t, v1.Kind_KIND_DISCRETE, r.Kind)
			}
			require.Len(t, got, poll*n)
			require.Equal(t, map[string]uint64{sources.DropUnsupportedLayout: uint64(poll * n)}, src.Dropped())
		}
		require.Equal(t, sources.Drop{Reason: sources.DropUnsupportedLayout, Name: "PS1 Status", ID: "0xd0",
			Detail: "discrete sensor (discrete sensors are not read)"}, got[0])
	})
}

// TestUnreadRecords checks the drops a repository's records make: an
// undecodable record is malformed, a sensor the poll cannot convert an
// unsupported layout, a record that is no sensor nothing.
func TestUnreadRecords(t *testing.T) {
	src := New(sources.Target{Host: "127.0.0.1"}, Options{})
	sc := &scanState{}
	good := fullRecord(fullSpec{number: 0x40, sensorType: 0x02, base: unitVolts, m: 1, id: []byte("12V")})
	src.addRecord(sc, good)
	src.addRecord(sc, fullRecord(fullSpec{number: 0x50, sensorType: 0x0B, base: unitCFM, m: 1, linearization: 1, id: []byte("Airflow")}))
	src.addRecord(sc, good[:20])                            // the header says more bytes than there are
	src.addRecord(sc, []byte{0x07, 0x00, 0x51, 0x12, 0x00}) // a record of another type
	require.Len(t, sc.sensors, 1)
	require.Equal(t, []sources.Drop{
		{Reason: sources.DropUnsupportedLayout, Name: "Airflow", ID: "0x50", Detail: "non-linear conversion"},
		{Reason: sources.DropMalformed, ID: "record 0x1234", Detail: "record truncated: 20 of 51 bytes"},
	}, sc.unread)
	require.Equal(t, 1, sc.bad)
	require.Equal(t, 1, sc.skipped)
}
