package ipmi

import (
	"bufio"
	"encoding/hex"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// fullSpec describes a Full Sensor Record for fullRecord.
type fullSpec struct {
	owner, lun, number      uint8
	sensorType, readingType uint8
	entity, instance        uint8
	units1, base, modifier  uint8
	linearization           uint8
	m, b                    int16
	rExp, bExp              int8
	access                  uint8 // threshold access support
	readable                uint8
	unr, ucr, unc, lnr, lcr uint8
	lnc                     uint8
	idType                  uint8 // type bits of the type/length byte
	id                      []byte
	idLen                   int // the length field; len(id) when 0
	format                  uint8
	omitReadType            bool
}

// fullRecord encodes a Full Sensor Record (§43.1), independently of the
// decoder under test.
func fullRecord(s fullSpec) []byte {
	if s.owner == 0 {
		s.owner = 0x20
	}
	if s.readingType == 0 && !s.omitReadType {
		s.readingType = readingTypeThreshold
	}
	n := s.idLen
	if n == 0 {
		n = len(s.id)
	}
	rec := make([]byte, 48+len(s.id))
	rec[0], rec[1] = 0x34, 0x12
	rec[2], rec[3], rec[4] = 0x51, 0x01, byte(len(rec)-5)
	rec[5], rec[6], rec[7] = s.owner, s.lun, s.number
	rec[8], rec[9] = s.entity, s.instance
	rec[10] = 0x67
	rec[11] = s.access << 2
	rec[12], rec[13] = s.sensorType, s.readingType
	rec[18] = s.readable
	rec[20] = s.format<<6 | s.units1&0x3F
	rec[21], rec[22], rec[23] = s.base, s.modifier, s.linearization
	m, b := uint16(s.m)&0x3FF, uint16(s.b)&0x3FF
	rec[24], rec[25] = byte(m), byte(m>>8)<<6
	rec[26], rec[27] = byte(b), byte(b>>8)<<6
	rec[29] = byte(s.rExp)<<4 | byte(s.bExp)&0x0F
	rec[36], rec[37], rec[38], rec[39], rec[40], rec[41] = s.unr, s.ucr, s.unc, s.lnr, s.lcr, s.lnc
	rec[47] = s.idType<<6 | byte(n)
	copy(rec[48:], s.id)
	return rec
}

func TestConversion(t *testing.T) {
	tests := []struct {
		name string
		c    conversion
		raw  uint8
		want float64
	}{
		{name: "unsigned", c: conversion{m: 1}, raw: 0x18, want: 24},
		{name: "two's complement negative", c: conversion{m: 1, format: formatTwos}, raw: 0xE2, want: -30},
		{name: "two's complement minimum", c: conversion{m: 1, format: formatTwos}, raw: 0x80, want: -128},
		{name: "one's complement negative", c: conversion{m: 1, rExp: -1, format: formatOnes}, raw: 0xF5, want: -1},
		{name: "one's complement minus zero", c: conversion{m: 1, format: formatOnes}, raw: 0xFF, want: 0},
		{name: "one's complement minimum", c: conversion{m: 1, format: formatOnes}, raw: 0x80, want: -127},
		{name: "offset and exponents", c: conversion{m: 6, b: 5, bExp: 1, rExp: -2}, raw: 192, want: 12.02},
		{name: "no float noise", c: conversion{m: 6, rExp: -2}, raw: 201, want: 12.06},
		{name: "negative M", c: conversion{m: -2}, raw: 10, want: -20},
		{name: "negative B", c: conversion{m: 1, b: -100, rExp: -1}, raw: 50, want: -5},
		{name: "positive result exponent", c: conversion{m: 1, rExp: 2}, raw: 54, want: 5400},
		{name: "negative B exponent", c: conversion{m: 1, b: 25, bExp: -1, rExp: -1}, raw: 10, want: 1.25},
		{name: "extremes stay finite", c: conversion{m: -512, b: -512, bExp: 7, rExp: 7}, raw: 0xFF, want: -512*255e7 - 512e14},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.c.value(tc.raw)
			require.InDelta(t, tc.want, got, math.Abs(tc.want)*1e-12)
			if tc.c.decimals() > 0 {
				require.Equal(t, tc.want, got, "exact to the sensor's decimals")
			}
		})
	}
}

func TestDecodeFull(t *testing.T) {
	tests := []struct {
		name   string
		spec   fullSpec
		skip   skipReason
		check  func(t *testing.T, s sensor)
		errMsg string
	}{
		{
			name: "temperature with thresholds",
			spec: fullSpec{number: 0x04, sensorType: 0x01, entity: 0x37, instance: 0x81, base: unitDegreesC, m: 1, format: formatTwos,
				access: 1, readable: 0x18, ucr: 42, unc: 38, id: []byte("Inlet Temp")},
			check: func(t *testing.T, s sensor) {
				require.Equal(t, "Inlet Temp", s.name)
				require.Equal(t, "0x04", s.id)
				require.Equal(t, uint16(0x1234), s.recordID)
				require.Equal(t, uint8(1), s.entityInst, "the logical-entity bit is not part of the instance")
				require.Equal(t, v1.Kind_KIND_TEMPERATURE, s.kind)
				require.Equal(t, "degrees C", s.unit)
				require.Equal(t, "Temperature", s.typeName)
				require.True(t, s.analog)
				require.Equal(t, uint8(0x18), s.readable)
				require.Equal(t, []v1.Threshold{
					{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CAUTION, Value: 38},
					{Kind: v1.ThresholdKind_THRESHOLD_UPPER_CRITICAL, Value: 42},
				}, convertThresholds(s.conv, s.readable, s.sdrThresholds))
			},
		},
		{
			name: "10-bit M and B sign-extended, 4-bit exponents",
			spec: fullSpec{number: 1, sensorType: 0x02, base: unitVolts, m: -300, b: -512, rExp: -8, bExp: 7, id: []byte("V")},
			check: func(t *testing.T, s sensor) {
				require.Equal(t, conversion{m: -300, b: -512, rExp: -8, bExp: 7}, s.conv)
			},
		},
		{
			name:  "non-linear",
			spec:  fullSpec{number: 1, sensorType: 0x0B, base: unitCFM, m: 1, linearization: 0x01, id: []byte("Airflow")},
			skip:  skipNonLinear,
			check: func(t *testing.T, s sensor) { require.False(t, s.analog) },
		},
		{
			name: "non-linear, reading-specific factors",
			spec: fullSpec{number: 1, sensorType: 0x01, base: unitDegreesC, m: 1, linearization: 0x70, id: []byte("T")},
			skip: skipNonLinear,
		},
		{
			name: "threshold type without analog reading",
			spec: fullSpec{number: 1, sensorType: 0x01, base: unitDegreesC, m: 1, format: formatNone, id: []byte("T")},
			skip: skipNoAnalog,
		},
		{
			name: "discrete",
			spec: fullSpec{number: 1, sensorType: 0x08, readingType: 0x6F, id: []byte("PS1 Status")},
			skip: skipDiscrete,
		},
		{
			name: "OEM reading type",
			spec: fullSpec{number: 1, sensorType: 0xC0, readingType: 0x70, id: []byte("OEM")},
			skip: skipOEMReading,
			check: func(t *testing.T, s sensor) {
				require.Equal(t, "OEM 0xc0", s.typeName)
			},
		},
		{
			name: "another controller",
			spec: fullSpec{owner: 0x2C, lun: 1, number: 7, sensorType: 0x01, base: unitDegreesC, m: 1, id: []byte("ME Temp")},
			skip: skipBridged,
			check: func(t *testing.T, s sensor) {
				require.Equal(t, "0x2c.1.0x07", s.id)
			},
		},
		{
			name: "LUN 1 of the BMC is read",
			spec: fullSpec{lun: 1, number: 7, sensorType: 0x04, base: unitRPM, m: 60, id: []byte("Fan")},
			check: func(t *testing.T, s sensor) {
				require.True(t, s.analog)
				require.Equal(t, "0x20.1.0x07", s.id)
				require.Equal(t, uint8(1), s.lun)
			},
		},
		{
			name: "fan duty in percent",
			spec: fullSpec{number: 1, sensorType: 0x04, units1: 0x01, m: 1, id: []byte("Fan 1")},
			check: func(t *testing.T, s sensor) {
				require.Equal(t, "percent", s.unit)
				require.Equal(t, v1.Kind_KIND_FAN, s.kind)
			},
		},
		{
			name:   "ID string longer than the record",
			spec:   fullSpec{number: 1, sensorType: 0x01, m: 1, id: []byte("ab"), idLen: 9},
			errMsg: "ID string of 9 bytes, 2 present",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ss, skip, err := decodeRecord(fullRecord(tc.spec))
			if tc.errMsg != "" {
				require.ErrorIs(t, err, errTruncated)
				require.ErrorContains(t, err, tc.errMsg)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.skip, skip)
			require.Len(t, ss, 1)
			if tc.check != nil {
				tc.check(t, ss[0])
			}
		})
	}
}

func TestDecodeRecordMalformed(t *testing.T) {
	good := fullRecord(fullSpec{number: 1, sensorType: 0x01, m: 1, id: []byte("T")})
	tests := []struct {
		name string
		rec  []byte
		skip skipReason
		err  bool
	}{
		{name: "empty", rec: nil, err: true},
		{name: "short header", rec: good[:4], err: true},
		{name: "length beyond the data", rec: good[:len(good)-1], err: true},
		{name: "full record too short for its type", rec: []byte{1, 0, 0x51, 0x01, 3, 0x20, 0, 1}, err: true},
		{name: "compact record too short", rec: []byte{1, 0, 0x51, 0x02, 3, 0x20, 0, 1}, err: true},
		{name: "FRU locator is not a sensor", rec: []byte{1, 0, 0x51, 0x11, 0}, skip: skipNotSensor},
		{name: "trailing bytes after the record are ignored", rec: append(append([]byte(nil), good...), 0xAA, 0xBB)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, skip, err := decodeRecord(tc.rec)
			if tc.err {
				require.ErrorIs(t, err, errTruncated)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.skip, skip)
		})
	}
}

func TestDecodeCompact(t *testing.T) {
	rec := make([]byte, 32+6)
	rec[2], rec[3], rec[4] = 0x51, 0x02, byte(len(rec)-5)
	rec[5], rec[7] = 0x20, 0x60
	rec[8], rec[9] = 0x0A, 1
	rec[12], rec[13] = 0x08, 0x6F
	rec[23] = 0x10 | 3 // alphabetic modifier, three shared sensors
	rec[24] = 0x80     // entity instance increments, offset 0
	rec[31] = 0xC0 | 6
	copy(rec[32:], "PSU St")
	ss, skip, err := decodeRecord(rec)
	require.NoError(t, err)
	require.Equal(t, skipDiscrete, skip)
	require.Len(t, ss, 3)
	for i, want := range []struct {
		name, id string
		inst     uint8
	}{{"PSU StA", "0x60", 1}, {"PSU StB", "0x61", 2}, {"PSU StC", "0x62", 3}} {
		require.Equal(t, want.name, ss[i].name)
		require.Equal(t, want.id, ss[i].id)
		require.Equal(t, want.inst, ss[i].entityInst)
		require.Equal(t, "Power Supply", ss[i].typeName)
		require.False(t, ss[i].analog)
	}

	rec[23], rec[24] = 2, 5 // numeric modifier from 5, instance fixed
	ss, _, err = decodeRecord(rec)
	require.NoError(t, err)
	require.Equal(t, []string{"PSU St5", "PSU St6"}, []string{ss[0].name, ss[1].name})
	require.Equal(t, ss[0].entityInst, ss[1].entityInst)

	rec[13] = readingTypeThreshold // a threshold sensor needs factors a compact record lacks
	_, skip, err = decodeRecord(rec)
	require.NoError(t, err)
	require.Equal(t, skipNoAnalog, skip)
}

func TestIDString(t *testing.T) {
	tests := []struct {
		name    string
		typeLen uint8
		data    []byte
		want    string
		err     bool
	}{
		{name: "8-bit", typeLen: 0xC5, data: []byte("CPU 1"), want: "CPU 1"},
		{name: "Latin-1 becomes UTF-8", typeLen: 0xC5, data: []byte{'T', 'e', 'm', 'p', 0xE9}, want: "Tempé"},
		{name: "control characters", typeLen: 0xC3, data: []byte{'a', 0x07, 'b'}, want: "a b"},
		{name: "trailing NULs and spaces", typeLen: 0xC6, data: []byte{'F', 'a', 'n', ' ', 0, 0}, want: "Fan"},
		{name: "cut at the first NUL", typeLen: 0xC5, data: []byte{'F', 'a', 0, 'x', 'y'}, want: "Fa"},
		{name: "empty", typeLen: 0xC0, want: ""},
		{name: "6-bit packed, length in characters (sdrcomp)", typeLen: 0x84, data: []byte{0x66, 0xE8, 0x46}, want: "FAN1"},
		{name: "6-bit packed, length in bytes", typeLen: 0x86, data: []byte{0x66, 0xE8, 0x46, 0x66, 0xE8, 0x46}, want: "FAN1FAN1"},
		{name: "6-bit packed, three characters", typeLen: 0x83, data: []byte{0x91, 0x64, 0x03}, want: "12V"},
		{name: "BCD plus, length in characters, low nibble first (sdrcomp)", typeLen: 0x44, data: []byte{0x21, 0x5C}, want: "12.5"},
		{name: "BCD plus, odd length", typeLen: 0x43, data: []byte{0x21, 0x00}, want: "120"},
		{name: "unicode taken byte-wise", typeLen: 0x02, data: []byte("ok"), want: "ok"},
		{name: "8-bit truncated", typeLen: 0xC8, data: []byte("abc"), err: true},
		{name: "6-bit truncated", typeLen: 0x88, data: []byte{1, 2}, err: true},
		{name: "BCD truncated", typeLen: 0x48, data: []byte{1}, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := idString(tc.typeLen, tc.data)
			if tc.err {
				require.ErrorIs(t, err, errTruncated)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestUnitsAndKinds(t *testing.T) {
	tests := []struct {
		name                          string
		units1, base, modifier, sType uint8
		unit                          string
		kind                          v1.Kind
	}{
		{name: "degrees C", base: unitDegreesC, sType: 0x01, unit: "degrees C", kind: v1.Kind_KIND_TEMPERATURE},
		{name: "RPM", base: unitRPM, sType: 0x04, unit: "RPM", kind: v1.Kind_KIND_FAN},
		{name: "watts of a PSU", base: unitWatts, sType: 0x08, unit: "Watts", kind: v1.Kind_KIND_POWER},
		{name: "amps", base: unitAmps, sType: 0x03, unit: "Amps", kind: v1.Kind_KIND_CURRENT},
		{name: "unspecified unit, fan type", sType: 0x04, unit: "", kind: v1.Kind_KIND_FAN},
		{name: "percent of nothing", units1: 0x01, sType: 0x0B, unit: "percent", kind: v1.Kind_KIND_PERCENT},
		{name: "percent RPM", units1: 0x01, base: unitRPM, sType: 0x04, unit: "% RPM", kind: v1.Kind_KIND_FAN},
		{name: "divided with a rate", units1: 1<<1 | 3<<3, base: unitJoules, modifier: 24, sType: 0x0B, unit: "Joules/hour/s", kind: v1.Kind_KIND_ENERGY},
		{name: "multiplied", units1: 2 << 1, base: unitVolts, modifier: unitAmps, sType: 0x0B, unit: "Volts*Amps", kind: v1.Kind_KIND_VOLTAGE},
		{name: "unknown unit code", base: 200, sType: 0x0B, unit: "unit 0xc8", kind: v1.Kind_KIND_UNSPECIFIED},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.unit, unitString(tc.units1, tc.base, tc.modifier))
			require.Equal(t, tc.kind, kindOf(tc.units1, tc.base, tc.sType))
		})
	}
	require.Equal(t, "Other Units-based", sensorTypeName(0x0B))
	require.Equal(t, "Unknown 0x3f", sensorTypeName(0x3F))
}

func TestDecodeReading(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want reading
		h    v1.Health
		err  bool
	}{
		{name: "ok", data: []byte{0x18, 0xC0, 0xC0}, want: reading{raw: 0x18, states: 0xC0}, h: v1.Health_HEALTH_OK},
		{name: "upper non-critical", data: []byte{85, 0xC0, 0xC8}, want: reading{raw: 85, status: 0x08, states: 0xC8}, h: v1.Health_HEALTH_WARNING},
		{name: "upper critical and non-critical", data: []byte{95, 0xC0, 0xD8}, want: reading{raw: 95, status: 0x18, states: 0xD8}, h: v1.Health_HEALTH_CRITICAL},
		{name: "lower non-recoverable", data: []byte{0, 0xC0, 0x04}, want: reading{status: 0x04, states: 0x04}, h: v1.Health_HEALTH_CRITICAL},
		{name: "lower non-critical", data: []byte{0, 0xC0, 0x01}, want: reading{status: 0x01, states: 0x01}, h: v1.Health_HEALTH_WARNING},
		{name: "unavailable", data: []byte{0, 0x60, 0xC0}, want: reading{unavailable: true, states: 0xC0}},
		{name: "scanning disabled", data: []byte{0x30, 0x00, 0x00, 0x00}, want: reading{raw: 0x30, unavailable: true, disabled: true}},
		{name: "two bytes only", data: []byte{7, 0x40}, want: reading{raw: 7}, h: v1.Health_HEALTH_OK},
		{name: "discrete states", data: []byte{0, 0xC0, 0x03, 0x81}, want: reading{status: 0x03, states: 0x0103}},
		{name: "truncated", data: []byte{7}, err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeReading(tc.data)
			if tc.err {
				require.ErrorIs(t, err, errTruncated)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			if tc.h != v1.Health_HEALTH_UNSPECIFIED {
				require.Equal(t, tc.h, health(got.status))
			}
		})
	}
}

func TestDecodeResponses(t *testing.T) {
	t.Run("chassis status", func(t *testing.T) {
		cs, err := decodeChassis([]byte{0x01, 0x00, 0x08})
		require.NoError(t, err)
		require.Equal(t, chassisStatus{powerOn: true, coolingFault: true}, cs)
		cs, err = decodeChassis([]byte{0x08, 0x00, 0x05, 0x00})
		require.NoError(t, err)
		require.Equal(t, chassisStatus{powerFault: true, intrusion: true, driveFault: true}, cs)
		info := map[string]string{}
		cs.fill(info)
		require.Equal(t, map[string]string{"power_state": "Off", "chassis_power_fault": "true",
			"chassis_cooling_fault": "false", "chassis_drive_fault": "true", "chassis_intrusion": "true"}, info)
		_, err = decodeChassis([]byte{1, 0})
		require.ErrorIs(t, err, errTruncated)
	})
	t.Run("dcmi power reading", func(t *testing.T) {
		b := make([]byte, 18)
		b[0], b[1], b[2], b[17] = 0xDC, 0x2E, 0x01, 0x40
		w, active, err := decodePowerReading(b)
		require.NoError(t, err)
		require.True(t, active)
		require.Equal(t, 302.0, w)
		b[17] = 0
		_, active, err = decodePowerReading(b)
		require.NoError(t, err)
		require.False(t, active, "measurement not active: not published")
		b[0] = 0xDD
		_, _, err = decodePowerReading(b)
		require.ErrorContains(t, err, "group extension")
		_, _, err = decodePowerReading(b[:10])
		require.ErrorIs(t, err, errTruncated)
	})
	t.Run("device id", func(t *testing.T) {
		id, err := decodeDeviceID([]byte{0x20, 0x01, 0x82, 0x72, 0x02, 0x81, 0x0B, 0x00, 0xF0, 0x00, 0x20})
		require.NoError(t, err)
		require.Equal(t, identity{known: true, manufacturerID: 11, productID: 0x2000, firmware: "2.72"}, id)
		require.Equal(t, "HPE", vendorName(id.manufacturerID))
		require.Equal(t, "123456", vendorName(123456))
		_, err = decodeDeviceID([]byte{1, 2, 3})
		require.ErrorIs(t, err, errTruncated)
	})
	t.Run("guid", func(t *testing.T) {
		g := []byte{0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
		require.Equal(t, "00112233-4455-6677-8899-aabbccddeeff", decodeGUID(g))
		require.Empty(t, decodeGUID(g[:15]))
	})
	t.Run("sdr repository info", func(t *testing.T) {
		fp, err := decodeRepoInfo([]byte{0x51, 0x0F, 0x00, 0xFE, 0xFF, 1, 2, 3, 4, 5, 6, 7, 8, 0x22})
		require.NoError(t, err)
		require.Equal(t, fingerprint{count: 15, addition: 0x04030201, erasal: 0x08070605, known: true}, fp)
		_, err = decodeRepoInfo([]byte{0x51})
		require.ErrorIs(t, err, errTruncated)
	})
	t.Run("channel authentication capabilities", func(t *testing.T) {
		pkt := gcacPacket(1, PrivilegeUser)
		_, _, ok := parseGCAC(pkt, 1)
		require.False(t, ok, "a request is not an answer")
		_, _, ok = parseGCAC([]byte{6, 0, 0xff}, 1)
		require.False(t, ok)
	})
}

// seedRecords returns the SDR records of testdata/sdr/*.hex: those bmcsim
// serves for every personality and the sdrcomp set of the ipmi_sim peer.
func seedRecords(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "sdr", "*.hex"))
	require.NoError(tb, err)
	require.NotEmpty(tb, files, "fuzz seeds missing: go test ./pkg/sources/ipmi -update")
	var out [][]byte
	for _, f := range files {
		fh, err := os.Open(f)
		require.NoError(tb, err)
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			rec, err := hex.DecodeString(line)
			require.NoError(tb, err, f)
			out = append(out, rec)
		}
		require.NoError(tb, sc.Err())
		require.NoError(tb, fh.Close())
	}
	return out
}

// TestSeedRecordsDecode decodes every recorded repository: bmcsim's and
// the sdrcomp set all decode, with sensible names and conversions.
func TestSeedRecordsDecode(t *testing.T) {
	for _, rec := range seedRecords(t) {
		ss, skip, err := decodeRecord(rec)
		require.NoError(t, err, "% x", rec)
		require.NotEqual(t, skipNotSensor, skip)
		for _, s := range ss {
			require.NotEmpty(t, s.name)
			require.NotEmpty(t, s.typeName)
			if s.analog {
				require.NotZero(t, s.conv.m, s.name)
			}
		}
	}
}

// FuzzDecodeRecord feeds arbitrary bytes to the SDR record decoder: it
// never panics, and what it accepts is well-formed.
func FuzzDecodeRecord(f *testing.F) {
	for _, rec := range seedRecords(f) {
		f.Add(rec)
	}
	f.Add(fullRecord(fullSpec{number: 1, sensorType: 0x02, base: unitVolts, m: -300, b: -512, rExp: -8, bExp: 7, idType: 2, id: []byte{0x66, 0xE8, 0x46}, idLen: 4}))
	f.Add([]byte{1, 0, 0x51, 0x02, 27, 0x20, 0, 0x60, 0x0A, 1, 0, 0, 0x08, 0x6F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x1F, 0x85, 0, 0, 0, 0, 0, 0, 0x41, 0x31})
	f.Fuzz(func(t *testing.T, rec []byte) {
		ss, skip, err := decodeRecord(rec)
		if err != nil {
			require.Empty(t, ss)
			return
		}
		if len(rec) < sdrHeaderLen || (rec[3] != recordTypeFull && rec[3] != recordTypeCompact) {
			require.Equal(t, skipNotSensor, skip)
			return
		}
		require.NotEmpty(t, ss)
		require.LessOrEqual(t, len(ss), 15, "a compact record shares at most 15 sensors")
		for _, s := range ss {
			require.True(t, utf8.ValidString(s.name), "%q", s.name)
			require.NotContains(t, s.name, "\x00")
			require.True(t, utf8.ValidString(s.unit))
			require.NotEmpty(t, s.id)
			require.Equal(t, s.analog, skip == skipNone && rec[3] == recordTypeFull)
			if !s.analog {
				// Whatever states a discrete sensor asserts, they are
				// named, one name per bit, plus "absent" at most.
				require.Zero(t, s.stateMask&0x8000)
				states := (uint16(rec[len(rec)-1]) | uint16(rec[0])<<8) & 0x7FFF // states the input chooses
				st, h := discreteState(s.sensorType, s.readingType, s.stateMask, states)
				names := strings.Split(st, ",")
				if st == "" {
					names = nil
				}
				want := bits.OnesCount16(states)
				if len(names) > 0 && names[len(names)-1] == stateAbsent {
					want++
				}
				require.Len(t, names, want, "%q for states %#04x", st, states)
				require.Contains(t, []v1.Health{v1.Health_HEALTH_OK, v1.Health_HEALTH_WARNING, v1.Health_HEALTH_CRITICAL}, h)
				continue
			}
			require.NotEqual(t, uint8(formatNone), s.conv.format)
			for raw := range 256 {
				v := s.conv.value(uint8(raw))
				require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "raw %d: %v", raw, v)
			}
			for _, th := range convertThresholds(s.conv, s.readable, s.sdrThresholds) {
				require.False(t, math.IsNaN(th.Value) || math.IsInf(th.Value, 0))
			}
		}
	})
}

// FuzzConversion checks the conversion of every combination of factors
// against the formula of §36.3, computed independently.
func FuzzConversion(f *testing.F) {
	f.Add(int16(1), int16(0), int8(0), int8(0), uint8(formatTwos), uint8(0xE2))
	f.Add(int16(6), int16(5), int8(-2), int8(1), uint8(formatUnsigned), uint8(192))
	f.Add(int16(1), int16(0), int8(-1), int8(0), uint8(formatOnes), uint8(0xF5))
	f.Add(int16(-512), int16(511), int8(7), int8(-8), uint8(formatUnsigned), uint8(255))
	f.Fuzz(func(t *testing.T, m, b int16, rExp, bExp int8, format, raw uint8) {
		// Through the wire encoding, as a BMC would send the factors.
		rec := fullRecord(fullSpec{number: 1, sensorType: 0x01, base: unitDegreesC, m: m, b: b, rExp: rExp, bExp: bExp,
			format: format % 3, id: []byte("x")})
		ss, skip, err := decodeRecord(rec)
		require.NoError(t, err)
		require.Equal(t, skipNone, skip)
		c := ss[0].conv
		wm, wb := int(m<<6)>>6, int(b<<6)>>6 // 10-bit two's complement
		wr, wbe := int(rExp<<4)>>4, int(bExp<<4)>>4
		require.Equal(t, conversion{m: int16(wm), b: int16(wb), rExp: int8(wr), bExp: int8(wbe), format: format % 3}, c)
		x := float64(raw)
		switch format % 3 {
		case formatTwos:
			x = float64(int8(raw))
		case formatOnes:
			if raw >= 0x80 {
				x = -float64(0xFF - raw)
			}
		}
		want := (float64(wm)*x + float64(wb)*math.Pow(10, float64(wbe))) * math.Pow(10, float64(wr))
		got := c.value(raw)
		require.False(t, math.IsNaN(got) || math.IsInf(got, 0))
		tol := 0.5*math.Pow(10, -float64(c.decimals())) + math.Abs(want)*1e-12
		require.InDelta(t, want, got, tol)
	})
}

// FuzzDecodeResponse feeds arbitrary response data to every response
// decoder: none panics, and a Get Sensor Reading of two bytes or more is
// always accepted.
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte{0x18, 0xC0, 0xC0})
	f.Add([]byte{0x01, 0x00, 0x08, 0x00})
	f.Add([]byte{0xDC, 0x2E, 0x01, 0x0F, 0x01, 0x40, 0x01, 0x20, 0x01, 0, 0, 0, 0, 0x60, 0xEA, 0, 0, 0x40})
	f.Add([]byte{0x20, 0x01, 0x82, 0x72, 0x02, 0x81, 0x0B, 0x00, 0x00, 0x00, 0x20})
	f.Add([]byte{0x51, 0x0F, 0x00, 0xFE, 0xFF, 1, 2, 3, 4, 5, 6, 7, 8, 0x22})
	f.Add(gcacPacket(1, PrivilegeUser))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeReading(b)
		require.Equal(t, len(b) < 2, err != nil)
		if err == nil {
			_ = health(r.status)
		}
		if cs, err := decodeChassis(b); err == nil {
			cs.fill(map[string]string{})
		}
		_, _, _ = decodePowerReading(b)
		if id, err := decodeDeviceID(b); err == nil {
			id.guid = decodeGUID(b)
			id.fill(map[string]string{})
		}
		_, _ = decodeRepoInfo(b)
		_, _, _ = parseGCAC(b, 1)
		if len(b) > 0 {
			s, err := idString(b[0], b[1:])
			if err == nil {
				require.True(t, utf8.ValidString(s))
			}
		}
	})
}

// TestAppendReadingAllocs checks the per-reading hot path: decoding a Get
// Sensor Reading answer and appending the reading into a snapshot that
// already has room allocates nothing.
func TestAppendReadingAllocs(t *testing.T) {
	ss, _, err := decodeRecord(fullRecord(fullSpec{number: 0x40, sensorType: 0x02, base: unitVolts, m: 6, b: 5, bExp: 1, rExp: -2,
		access: 1, readable: 0x1B, lcr: 170, lnc: 180, unc: 205, ucr: 212, id: []byte("12V")}))
	require.NoError(t, err)
	sn := &ss[0]
	sn.thresholds = convertThresholds(sn.conv, sn.readable, sn.sdrThresholds)
	answer := []byte{192, 0xC0, 0xC0}
	var snap v1.Snapshot
	for range 64 {
		appendReading(&snap, sn, reading{})
	}
	allocs := testing.AllocsPerRun(100, func() {
		snap.Readings = snap.Readings[:0]
		for range 64 {
			rd, err := decodeReading(answer)
			if err != nil {
				t.Fatal(err)
			}
			appendReading(&snap, sn, rd)
		}
	})
	require.Zero(t, allocs)
	require.Equal(t, 12.02, snap.Readings[63].Value)
	require.Len(t, snap.Readings[63].Thresholds, 4)
}
