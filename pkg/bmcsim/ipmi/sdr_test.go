package ipmi

import (
	"context"
	"testing"

	gbmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
)

func TestConversionFor(t *testing.T) {
	tests := []struct {
		name   string
		spec   model.SensorSpec
		nPSU   int
		m      int16
		rExp   int8
		signed bool
	}{
		{name: "temperature", spec: model.SensorSpec{Kind: model.KindTemperature}, m: 1, signed: true},
		{name: "12 V rail: 0.06 V", spec: model.SensorSpec{Kind: model.KindVoltage, Nominal: 12}, m: 6, rExp: -2},
		{name: "5 V rail: 0.03 V", spec: model.SensorSpec{Kind: model.KindVoltage, Nominal: 5}, m: 3, rExp: -2},
		{name: "230 V input: 2 V", spec: model.SensorSpec{Kind: model.KindVoltage, Nominal: 230}, m: 2},
		{name: "25000 RPM fan: 100 RPM", spec: model.SensorSpec{Kind: model.KindFan, Nominal: 25000}, m: 1, rExp: 2},
		{name: "18000 RPM fan: 80 RPM", spec: model.SensorSpec{Kind: model.KindFan, Nominal: 18000}, m: 8, rExp: 1},
		{name: "fan without nominal: 70 RPM", spec: model.SensorSpec{Kind: model.KindFan}, m: 7, rExp: 1},
		{name: "chassis power: 2 W", spec: model.SensorSpec{Kind: model.KindPower, Source: model.SourceChassisPower}, m: 2},
		{name: "power with 1512 W limit: 7 W", spec: model.SensorSpec{Kind: model.KindPower, Source: model.SourceChassisPower,
			Thresholds: map[string]float64{"upper_critical": 1512}}, m: 7},
		{name: "one of two PSUs: 1 W", spec: model.SensorSpec{Kind: model.KindPower, Source: model.SourcePSUInput}, nPSU: 2, m: 1},
		{name: "current: 0.02 A", spec: model.SensorSpec{Kind: model.KindCurrent}, m: 2, rExp: -2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := conversionFor(&tc.spec, tc.nPSU)
			require.Equal(t, conversion{m: tc.m, rExp: tc.rExp, signed: tc.signed}, c)
			// The full scale and every threshold fit the raw byte.
			top := c.decode(0xFF)
			if c.signed {
				top = c.decode(0x7F)
			}
			require.GreaterOrEqual(t, top, fullScale(&tc.spec, tc.nPSU)*0.98)
			for _, v := range tc.spec.Thresholds {
				require.GreaterOrEqual(t, top, v)
			}
		})
	}
}

func TestConversionRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		c    conversion
		in   float64
		want float64
	}{
		{name: "negative margin", c: conversion{m: 1, signed: true}, in: -23.4, want: -23},
		{name: "saturates low signed", c: conversion{m: 1, signed: true}, in: -300, want: -128},
		{name: "saturates high signed", c: conversion{m: 1, signed: true}, in: 300, want: 127},
		{name: "saturates at zero unsigned", c: conversion{m: 2}, in: -5, want: 0},
		{name: "rounds to nearest step", c: conversion{m: 6, rExp: -2}, in: 12.04, want: 12.06},
		{name: "saturates high unsigned", c: conversion{m: 2}, in: 900, want: 510},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.InDelta(t, tc.want, tc.c.decode(tc.c.encode(tc.in)), 1e-9)
		})
	}
}

func TestShortID(t *testing.T) {
	tests := []struct{ in, want string }{
		{in: "CPU1 Temp", want: "CPU1 Temp"},
		{in: "01-Inlet Ambient", want: "01-Inlet Ambient"}, // exactly 16
		{in: "System Board Inlet Temp", want: "Board Inlet Temp"},
		{in: "System Board Exhaust Temp", want: "Exhaust Temp"},
		{in: "System Board Pwr Consumption", want: "Pwr Consumption"},
		{in: "Power Supply 1 Input", want: "Supply 1 Input"},
		{in: "AVeryLongSingleWordSensorName", want: "AVeryLongSingleW"},
		{in: "Température processeur ambiante", want: "ambiante"},
		{in: "ABCDEFGHIJKLMNOé", want: "ABCDEFGHIJKLMNO"}, // never splits a UTF-8 sequence
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got := shortID(tc.in)
			require.Equal(t, tc.want, got)
			require.LessOrEqual(t, len(got), sdrIDMaxLen)
		})
	}
}

func TestSensorIDsUniqueWithinPersonality(t *testing.T) {
	p := &model.Personality{Sensors: []model.SensorSpec{
		{Name: "Front Panel Board Fan1A", IPMI: model.IPMISensor{Number: 0x30}},
		{Name: "Rear Panel Board Fan1A", IPMI: model.IPMISensor{Number: 0x31}},
		{Name: "Left Panel Board Fan1A", IPMI: model.IPMISensor{Number: 0x32}},
		{Name: "Hidden", IPMI: model.IPMISensor{Omit: true}},
	}}
	require.Equal(t, []string{"Board Fan1A", "Board Fan1A#31", "Board Fan1A#32", ""}, SensorIDs(p))

	ps, err := model.Builtin()
	require.NoError(t, err)
	for _, name := range model.Names(ps) {
		seen := map[string]bool{}
		for i, id := range SensorIDs(ps[name]) {
			if ps[name].Sensors[i].IPMI.Omit {
				require.Empty(t, id)
				continue
			}
			require.NotEmpty(t, id)
			require.LessOrEqual(t, len(id), sdrIDMaxLen)
			require.False(t, seen[id], "%s: %q twice", name, id)
			seen[id] = true
		}
	}
}

// TestFullSensorRecordLayout checks the records against the spec byte by
// byte where go-ipmi's parser cannot be trusted (the threshold masks, which
// it reads byte-swapped) and through its parser for everything else.
func TestFullSensorRecordLayout(t *testing.T) {
	ps, err := model.Builtin()
	require.NoError(t, err)
	for _, name := range model.Names(ps) {
		t.Run(name, func(t *testing.T) {
			p := ps[name]
			pr, err := newProfile(p)
			require.NoError(t, err)
			for i, rec := range pr.records {
				sdr, err := types.ParseSDR(rec, 0)
				require.NoError(t, err)
				require.Equal(t, uint16(i+1), sdr.RecordHeader.RecordID)
				require.Equal(t, len(rec)-5, int(rec[4]))
				if rec[3] == sdrTypeCompact {
					// A discrete sensor: its supported states are its
					// assertion, deassertion and reading masks (§43.2
					// bytes 15-20), and it has no thresholds.
					sn := pr.sensor(rec[7])
					require.NotNil(t, sn)
					require.NotNil(t, sn.disc)
					require.Equal(t, sn.disc.Name, string(sdr.Compact.IDStringBytes))
					for _, off := range []int{14, 16, 18} {
						require.Equal(t, sn.disc.Supported, uint16(rec[off])|uint16(rec[off+1])<<8, "%s mask at byte %d", sn.id, off+1)
					}
					require.Zero(t, rec[11]&0x0C, "no thresholds")
					continue
				}
				full := sdr.Full
				sn := pr.sensor(uint8(full.SensorNumber))
				require.NotNil(t, sn)
				spec := &p.Sensors[sn.spec]
				require.Equal(t, sn.id, string(full.IDStringBytes))
				require.Equal(t, float64(sn.conv.m), float64(full.M))
				require.Equal(t, sn.conv.rExp, full.R_Exp)
				require.Zero(t, full.B)
				require.Zero(t, full.B_Exp)

				// §43.1 bytes 15-20 (0-based 14-19): lower reading mask in
				// bits 12-14 of the first word, upper in the second, the
				// readable mask in the low byte of the third.
				assertLower := uint16(rec[14]) | uint16(rec[15])<<8
				deassertUpper := uint16(rec[16]) | uint16(rec[17])<<8
				for th := range thCount {
					_, ok := spec.Thresholds[thresholdKey(th)]
					require.Equal(t, ok, rec[18]&(1<<th) != 0, "%s readable %s", spec.Name, thresholdKey(th))
					var returned bool
					if th < thUNC {
						returned = assertLower&(1<<(12+th)) != 0
					} else {
						returned = deassertUpper&(1<<(12+th-thUNC)) != 0
					}
					require.Equal(t, ok, returned, "%s status returned %s", spec.Name, thresholdKey(th))
				}
				require.Zero(t, rec[19], "no threshold is settable")
			}
		})
	}
}

func TestFirmwareRevision(t *testing.T) {
	tests := []struct {
		fw           string
		major, minor uint8
	}{
		{fw: "13.06.16", major: 13, minor: 0x06},
		{fw: "6.10.30.00", major: 6, minor: 0x10},
		{fw: "iLO 5 v2.72", major: 2, minor: 0x72},
		{fw: "2.14.0-dev", major: 2, minor: 0x14},
		{fw: "CDI3A4E 7.60", major: 7, minor: 0x60},
		{fw: "1.6", major: 1, minor: 0x06},
		{fw: "999.99", major: 127, minor: 0x99},
		{fw: "none"},
	}
	for _, tc := range tests {
		t.Run(tc.fw, func(t *testing.T) {
			major, minor := firmwareRevision(tc.fw)
			require.Equal(t, tc.major, major)
			require.Equal(t, tc.minor, minor)
		})
	}
}

// FuzzDispatch throws arbitrary commands at the command table from an
// administrator session: no handler, ours or go-ipmi's, may panic.
func FuzzDispatch(f *testing.F) {
	for _, seed := range []struct {
		netFn, cmd uint8
		data       []byte
	}{
		{0x04, 0x2D, []byte{0x01}},                    // Get Sensor Reading
		{0x04, 0x27, []byte{0x01}},                    // Get Sensor Thresholds
		{0x04, 0x2D, nil},                             // truncated
		{0x2C, 0x02, []byte{0xDC, 0x01, 0, 0}},        // DCMI power reading
		{0x2C, 0x02, []byte{0xDC}},                    // truncated
		{0x2C, 0x01, []byte{0xDC, 0x01}},              // DCMI capabilities
		{0x0A, 0x23, []byte{0, 0, 0, 0, 0, 5}},        // Get SDR
		{0x0A, 0x20, nil},                             // SDR repository info
		{0x00, 0x01, nil},                             // chassis status
		{0x06, 0x37, nil},                             // system GUID
		{0x0A, 0x11, []byte{0, 0, 0, 8}},              // Read FRU Data
		{0x0A, 0x40, nil},                             // Get SEL Info
		{0x0A, 0x43, []byte{0, 0, 0, 0, 0, 0xFF}},     // Get SEL Entry
		{0x0A, 0x43, []byte{0, 0, 0xFF, 0xFF, 14, 9}}, // partial, past the end
		{0x04, 0x2D, []byte{0xD0}},                    // a discrete sensor's reading
	} {
		f.Add(seed.netFn, seed.cmd, seed.data)
	}
	b := model.NewBMC("fuzz", "r", builtinForFuzz(f), model.Room{Seed: 1}, "u", "pw")
	b.SetFaults(model.Faults{PSUFailed: 1}) // the SEL has an entry
	s, err := New(b, Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, netFn, cmd uint8, data []byte) {
		sess := &gbmc.Session{PrivilegeLevel: gbmc.PrivilegeLevelAdministrator, MaxPrivilege: gbmc.PrivilegeLevelAdministrator, Channel: 1}
		hctx := &handlers.HandlerContext{BMC: s.gb, Session: sess}
		_, _, _ = s.reg.Dispatch(context.Background(), hctx, netFn&0xFE, cmd, data)
	})
}

func builtinForFuzz(f *testing.F) *model.Personality {
	ps, err := model.Builtin()
	if err != nil {
		f.Fatal(err)
	}
	return ps["idrac"]
}
