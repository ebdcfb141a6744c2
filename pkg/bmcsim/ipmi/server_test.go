package ipmi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testInstant is the instant every frozen test clock reads.
func testInstant() time.Time { return time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC) }

// fakeClock is an injectable clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(testInstant().UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// newTestBMC makes a virtual BMC of a built-in personality.
func newTestBMC(t *testing.T, personality string) *model.BMC {
	t.Helper()
	ps, err := model.Builtin()
	require.NoError(t, err)
	p, ok := ps[personality]
	require.True(t, ok, "personality %s", personality)
	return model.NewBMC("bmc-"+personality, "r01", p, model.Room{Seed: 7}, "operator", "op-Secret-1")
}

// startBMC serves b on a fresh loopback UDP port until the test ends.
func startBMC(t *testing.T, b *model.BMC, opts Options) (*Server, int) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	srv, err := New(b, opts)
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.Background(), pc) }()
	t.Cleanup(func() {
		require.NoError(t, srv.Close())
		require.NoError(t, <-errc)
	})
	return srv, pc.LocalAddr().(*net.UDPAddr).Port
}

// dialer opens go-ipmi client sessions to a test BMC.
type dialer struct {
	port      int
	user, pw  string
	suite     types.CipherSuiteID
	privilege types.PrivilegeLevel
	timeout   time.Duration
	retries   int
}

func newDialer(port int, b *model.BMC) dialer {
	return dialer{
		port: port, user: b.Username, pw: b.Password,
		suite: types.CipherSuiteID3, privilege: types.PrivilegeLevelUser,
		timeout: 2 * time.Second, retries: 1,
	}
}

// dial connects a lanplus client. On error the client is already closed.
func (d dialer) dial(t *testing.T) (*client.Client, error) {
	t.Helper()
	c, err := client.NewClient("127.0.0.1", d.port, d.user, d.pw)
	require.NoError(t, err)
	c.WithInterface(client.InterfaceLanplus).
		WithCipherSuiteID(d.suite).
		WithMaxPrivilegeLevel(d.privilege).
		WithTimeout(d.timeout).
		WithRetry(d.retries)
	if err := c.Connect(context.Background()); err != nil {
		_ = c.Close(context.Background()) // releases the socket; the session never was
		return nil, err
	}
	return c, nil
}

// mustDial connects or fails the test; the session is closed at cleanup
// unless the test closes it first through closeClient.
func (d dialer) mustDial(t *testing.T) *client.Client {
	t.Helper()
	c, err := d.dial(t)
	require.NoError(t, err)
	return c
}

// requireCC asserts that err is an IPMI completion code error.
func requireCC(t *testing.T, err error, cc types.CompletionCode) {
	t.Helper()
	require.Error(t, err)
	respErr, ok := types.IsResponseError(err)
	require.True(t, ok, "want completion code %#02x, got %v", uint8(cc), err)
	require.Equal(t, cc, respErr.CompletionCode())
}

// halfStep is the tolerance of a converted value: half a raw count.
func halfStep(full *types.SDRFull) float64 {
	return math.Abs(full.ConvertReading(1)-full.ConvertReading(0))/2 + 1e-9
}

// ipmiSensors lists the model sensors that must appear in the SDR, with
// their SDR ID string.
func ipmiSensors(p *model.Personality) (idx []int, ids []string) {
	all := SensorIDs(p)
	for i := range p.Sensors {
		if p.Sensors[i].IPMI.Omit || p.Sensors[i].Absent {
			continue
		}
		idx = append(idx, i)
		ids = append(ids, all[i])
	}
	return idx, ids
}

// thresholdTypes lists IPMI thresholds in the order of thLNC..thUNR.
func thresholdTypes() [thCount]types.SensorThresholdType {
	return [thCount]types.SensorThresholdType{
		types.SensorThresholdType_LNC, types.SensorThresholdType_LCR, types.SensorThresholdType_LNR,
		types.SensorThresholdType_UNC, types.SensorThresholdType_UCR, types.SensorThresholdType_UNR,
	}
}

// TestPersonalitiesWithGoIPMIClient checks every built-in personality
// through go-ipmi's own client, the one the poller uses: identity, chassis,
// the SDR repository decoded by the client's parser with live readings,
// thresholds and DCMI, under cipher suites 3 and 17.
func TestPersonalitiesWithGoIPMIClient(t *testing.T) {
	ps, err := model.Builtin()
	require.NoError(t, err)
	shared := NewShared()
	for _, name := range model.Names(ps) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := newTestBMC(t, name)
			p := b.Personality
			at := testInstant()
			srv, port := startBMC(t, b, Options{Now: func() time.Time { return at }, Shared: shared})
			for _, suite := range []types.CipherSuiteID{types.CipherSuiteID3, types.CipherSuiteID17} {
				t.Run(fmt.Sprintf("cipher_suite_%d", suite), func(t *testing.T) {
					d := newDialer(port, b)
					d.suite = suite
					c := d.mustDial(t)
					ctx := context.Background()

					dev, err := c.GetDeviceID(ctx)
					require.NoError(t, err)
					require.Equal(t, p.IPMI.ManufacturerID, dev.ManufacturerID)
					require.Equal(t, p.IPMI.ProductID, dev.ProductID)
					major, minor := firmwareRevision(p.Firmware)
					require.Equal(t, major, dev.MajorFirmwareRevision)
					// The client decodes the BCD minor revision to binary.
					require.Equal(t, (minor>>4)*10+minor&0x0F, dev.MinorFirmwareRevision)
					require.Equal(t, uint8(2), dev.MajorIPMIVersion)
					require.Equal(t, uint8(0), dev.MinorIPMIVersion)
					require.True(t, dev.SupportSDRRepo)
					require.True(t, dev.SupportSensor)

					guid, err := c.GetSystemGUID(ctx)
					require.NoError(t, err)
					u, err := types.ParseGUID(guid.GUID[:], types.GUIDModeSMBIOS)
					require.NoError(t, err)
					require.Equal(t, b.UUID, [16]byte(*u))

					cs, err := c.GetChassisStatus(ctx)
					require.NoError(t, err)
					require.True(t, cs.PowerIsOn)
					require.False(t, cs.CollingFanFault)
					require.False(t, cs.PowerFault)
					require.False(t, cs.DriveFault)
					require.False(t, cs.ChassisIntrusionActive)

					checkSDRs(t, c, b, at)
					checkDCMI(t, c, b, at)

					_, err = c.GetSensorReading(ctx, 0xFE)
					requireCC(t, err, types.CodeRequestedDataNotPresent)

					require.NoError(t, c.Close(ctx))
					require.Zero(t, srv.SessionCount(), "closed sessions must leave the table")
				})
			}
		})
	}
}

// checkSDRs reads the whole repository with the client's own parsing and
// live readings, and compares it with the model at instant at.
func checkSDRs(t *testing.T, c *client.Client, b *model.BMC, at time.Time) {
	t.Helper()
	ctx := context.Background()
	sdrs, err := c.GetSDRs(ctx)
	require.NoError(t, err)
	idx, ids := ipmiSensors(b.Personality)
	disc := b.Personality.Discrete()
	require.Len(t, sdrs, len(idx)+len(disc))
	// The discrete sensors follow the threshold sensors, as compact
	// records.
	for k, sdr := range sdrs[len(idx):] {
		d := &disc[k]
		require.Equal(t, types.SDRRecordTypeCompactSensor, sdr.RecordHeader.RecordType, d.Name)
		cp := sdr.Compact
		require.Equal(t, d.Name, string(cp.IDStringBytes))
		require.Equal(t, d.Number, uint8(cp.SensorNumber), d.Name)
		require.Equal(t, d.Entity, uint8(cp.SensorEntityID), d.Name)
		require.Equal(t, d.Instance, uint8(cp.SensorEntityInstance), d.Name)
		require.Equal(t, d.SensorType, uint8(cp.SensorType), d.Name)
		require.Equal(t, d.ReadingType, uint8(cp.SensorEventReadingType), d.Name)
		rd, err := c.GetSensorReading(ctx, d.Number)
		require.NoError(t, err, d.Name)
		require.False(t, rd.ReadingUnavailable, d.Name)
		require.False(t, rd.SensorScanningDisabled, d.Name)
		var got uint16
		for _, off := range rd.ActiveStates.TrueEvents() {
			got |= 1 << off
		}
		require.Equal(t, b.DiscreteState(d), got, d.Name)
		require.Equal(t, uint8(0x80|b.DiscreteState(d)>>8), rd.OptionalData2, "%s: byte 4 bit 7 is reserved, 1b", d.Name)
	}
	sdrs = sdrs[:len(idx)]
	readings := b.Readings(at)
	for k, sdr := range sdrs {
		spec := &b.Personality.Sensors[idx[k]]
		want := readings[idx[k]]
		require.Equal(t, types.SDRRecordTypeFullSensor, sdr.RecordHeader.RecordType)
		full := sdr.Full
		require.Equal(t, ids[k], string(full.IDStringBytes), "sensor %q", spec.Name)
		require.LessOrEqual(t, len(full.IDStringBytes), 16)
		require.Equal(t, spec.IPMI.Number, uint8(full.SensorNumber), spec.Name)
		require.Equal(t, spec.IPMI.Entity, uint8(full.SensorEntityID), spec.Name)
		require.Equal(t, spec.IPMI.Instance, uint8(full.SensorEntityInstance), spec.Name)
		wantType, wantUnit := typeAndUnit(spec)
		require.Equal(t, wantType, uint8(full.SensorType), spec.Name)
		require.Equal(t, wantUnit, uint8(full.SensorUnit.BaseUnit), spec.Name)
		require.True(t, full.SensorEventReadingType.IsThreshold(), spec.Name)
		require.Equal(t, types.LinearizationFunc(0), full.LinearizationFunc, spec.Name)
		tol := halfStep(full)
		require.InDelta(t, want.Value, full.SensorValue, tol, "%s reading", spec.Name)

		// Status as the client reports it, against the model's health.
		switch want.Health {
		case "OK":
			require.Equal(t, "ok", full.SensorStatus, spec.Name)
		case "Warning":
			require.Contains(t, []string{"unc", "lnc"}, full.SensorStatus, spec.Name)
		case "Critical":
			require.Contains(t, []string{"ucr", "lcr", "unr", "lnr"}, full.SensorStatus, spec.Name)
		}

		th, err := c.GetSensorThresholds(ctx, spec.IPMI.Number)
		require.NoError(t, err)
		readable := [thCount]bool{th.LNC_Readable, th.LCR_Readable, th.LNR_Readable, th.UNC_Readable, th.UCR_Readable, th.UNR_Readable}
		raws := [thCount]uint8{th.LNC_Raw, th.LCR_Raw, th.LNR_Raw, th.UNC_Raw, th.UCR_Raw, th.UNR_Raw}
		for i, tt := range thresholdTypes() {
			v, ok := spec.Thresholds[thresholdKey(i)]
			require.Equal(t, ok, readable[i], "%s %s readable", spec.Name, tt)
			if !ok {
				continue
			}
			require.InDelta(t, v, full.ConvertReading(raws[i]), tol, "%s %s", spec.Name, tt)
			// The record carries the same threshold.
			require.InDelta(t, v, full.ConvertReading(full.SensorThreshold(tt).Raw), tol, "%s SDR %s", spec.Name, tt)
		}
	}
}

// checkDCMI compares DCMI Get Power Reading with the model's chassis power,
// or expects C1h where the personality has no DCMI.
func checkDCMI(t *testing.T, c *client.Client, b *model.BMC, at time.Time) {
	t.Helper()
	pr, err := c.GetDCMIPowerReading(context.Background())
	if !b.Personality.IPMI.DCMI {
		requireCC(t, err, types.CodeInvalidCommand)
		return
	}
	require.NoError(t, err)
	require.True(t, pr.PowerMeasurementActive)
	require.Equal(t, uint16(b.ChassisPower(at)), pr.CurrentPower)
	require.LessOrEqual(t, pr.MinimumPower, pr.CurrentPower)
	require.GreaterOrEqual(t, pr.MaximumPower, pr.CurrentPower)
	require.LessOrEqual(t, pr.MinimumPower, pr.AveragePower)
	require.GreaterOrEqual(t, pr.MaximumPower, pr.AveragePower)
	require.Equal(t, uint32(at.Unix()), pr.Timestamp)
	require.Equal(t, uint32(60000), pr.ReportingPeriod)
}

// TestChassisFollowsFaults checks that power and fan faults of the model
// reach Get Chassis Status, the fan's reading, DCMI and chassis control.
func TestChassisFollowsFaults(t *testing.T) {
	at := testInstant()
	tests := []struct {
		name      string
		faults    model.Faults
		poweredOn bool
		fanFault  bool
	}{
		{name: "healthy", poweredOn: true},
		{name: "fan 2 failed", faults: model.Faults{FanFailed: 2}, poweredOn: true, fanFault: true},
		{name: "no such fan", faults: model.Faults{FanFailed: 9}, poweredOn: true},
		{name: "powered off", faults: model.Faults{PowerOff: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBMC(t, "supermicro")
			b.SetFaults(tc.faults)
			srv, port := startBMC(t, b, Options{Now: func() time.Time { return at }})
			c := newDialer(port, b).mustDial(t)
			ctx := context.Background()

			cs, err := c.GetChassisStatus(ctx)
			require.NoError(t, err)
			require.Equal(t, tc.poweredOn, cs.PowerIsOn)
			require.Equal(t, tc.fanFault, cs.CollingFanFault)

			fan2 := &b.Personality.Sensors[5] // FAN2
			require.Equal(t, "FAN2", fan2.Name)
			sdr, err := c.GetSDRBySensorID(ctx, fan2.IPMI.Number)
			require.NoError(t, err)
			if tc.fanFault {
				require.Zero(t, sdr.Full.SensorValue)
				require.Equal(t, "lcr", sdr.Full.SensorStatus, "0 RPM is under the 420 RPM critical limit")
			} else {
				require.Positive(t, sdr.Full.SensorValue)
			}

			pr, err := c.GetDCMIPowerReading(ctx)
			require.NoError(t, err)
			require.Equal(t, uint16(b.ChassisPower(at)), pr.CurrentPower)

			require.NoError(t, c.Close(ctx))
			require.Zero(t, srv.SessionCount())
		})
	}
}

// TestAbsentSensor checks a numbered sensor the model marks absent (an
// empty fan bay): it has no SDR record, and reading it says "unavailable,
// scanning disabled" rather than reporting a value.
func TestAbsentSensor(t *testing.T) {
	ps, err := model.Builtin()
	require.NoError(t, err)
	p := *ps["ilo"]
	p.Sensors = append([]model.SensorSpec(nil), p.Sensors...)
	var fan5 *model.SensorSpec
	for i := range p.Sensors {
		if p.Sensors[i].Name == "Fan 5" {
			fan5 = &p.Sensors[i]
		}
	}
	require.NotNil(t, fan5)
	require.True(t, fan5.Absent)
	fan5.IPMI = model.IPMISensor{Number: 0x14, Entity: 0x1D, Instance: 5}

	b := model.NewBMC("bmc-absent", "r01", &p, model.Room{Seed: 7}, "operator", "pw")
	_, port := startBMC(t, b, Options{})
	c := newDialer(port, b).mustDial(t)
	ctx := context.Background()

	r, err := c.GetSensorReading(ctx, 0x14)
	require.NoError(t, err)
	require.True(t, r.ReadingUnavailable)
	require.True(t, r.SensorScanningDisabled)

	sdrs, err := c.GetSDRs(ctx)
	require.NoError(t, err)
	for _, sdr := range sdrs {
		if sdr.Full != nil {
			require.NotEqual(t, uint8(0x14), uint8(sdr.Full.SensorNumber), "absent sensors have no record")
		}
	}
	idx, _ := ipmiSensors(&p)
	require.Len(t, sdrs, len(idx)+len(p.Discrete()))
	require.NoError(t, c.Close(ctx))
}

// TestPrivileges checks that the BMC's user reaches ADMINISTRATOR, that
// chassis control needs more than USER, and that powering off through IPMI
// is seen by the model (and so by Redfish).
func TestPrivileges(t *testing.T) {
	b := newTestBMC(t, "openbmc")
	_, port := startBMC(t, b, Options{})
	ctx := context.Background()

	user := newDialer(port, b).mustDial(t)
	_, err := user.ChassisControl(ctx, 0x00) // power down
	requireCC(t, err, types.CodeInsufficientPrivilege)
	require.True(t, b.PoweredOn())
	require.NoError(t, user.Close(ctx))

	d := newDialer(port, b)
	d.privilege = types.PrivilegeLevelAdministrator
	d.suite = types.CipherSuiteID17
	admin := d.mustDial(t)
	_, err = admin.ChassisControl(ctx, 0x00)
	require.NoError(t, err)
	require.False(t, b.PoweredOn())
	cs, err := admin.GetChassisStatus(ctx)
	require.NoError(t, err)
	require.False(t, cs.PowerIsOn)
	require.NoError(t, admin.Close(ctx))
}

// TestServeLifecycle checks Close before Serve, double Close, and Serve
// ending with its context.
func TestServeLifecycle(t *testing.T) {
	b := newTestBMC(t, "ami")

	s, err := New(b, Options{})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	require.ErrorIs(t, s.Serve(context.Background(), pc), ErrClosed)
	_, err = pc.WriteTo([]byte{0}, pc.LocalAddr())
	require.ErrorIs(t, err, net.ErrClosed, "Serve owns the socket and closes it")

	s, err = New(b, Options{})
	require.NoError(t, err)
	pc, err = net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, pc) }()
	cancel()
	require.NoError(t, <-errc)
	require.NoError(t, s.Close())
}

// brokenConn is a socket whose reads fail for good.
type brokenConn struct{ net.PacketConn }

func (brokenConn) ReadFrom([]byte) (int, net.Addr, error) {
	return 0, nil, errors.New("network is unreachable")
}

// TestServeEndsOnReadError checks that a socket failing for good ends
// Serve with its error instead of spinning go-ipmi's read loop.
func TestServeEndsOnReadError(t *testing.T) {
	s, err := New(newTestBMC(t, "ami"), Options{})
	require.NoError(t, err)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	err = s.Serve(context.Background(), brokenConn{pc})
	require.ErrorContains(t, err, "serve ipmi bmc-ami: read: network is unreachable")
	require.ErrorIs(t, s.Serve(context.Background(), pc), ErrClosed)
}

// TestNewRejects checks New's argument validation.
func TestNewRejects(t *testing.T) {
	ps, err := model.Builtin()
	require.NoError(t, err)
	p := ps["ilo"]
	tests := []struct {
		name string
		b    *model.BMC
		opts Options
		want string
	}{
		{name: "nil BMC", want: "must be set"},
		{name: "long user", b: model.NewBMC("x", "r", p, model.Room{}, "a-user-name-of-17b", "pw"), want: "user name"},
		{name: "long password", b: model.NewBMC("x", "r", p, model.Room{}, "u", "a-password-of-21-bytes"), want: "password"},
		{name: "negative timeout", b: model.NewBMC("x", "r", p, model.Room{}, "u", "pw"), opts: Options{IdleTimeout: -1}, want: "idle timeout"},
		{name: "unknown cipher suite", b: model.NewBMC("x", "r", p, model.Room{}, "u", "pw"), opts: Options{CipherSuites: []uint8{3, 42}}, want: "cipher suite 42"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.b, tc.opts)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// isTimeout reports whether a client error means the BMC never answered:
// go-ipmi's client wraps a read timeout, or a deadline passing without a
// matching datagram, which is not a net.Error.
func isTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return err != nil && strings.Contains(err.Error(), "read deadline")
}
