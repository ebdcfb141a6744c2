package ipmi

import (
	"context"
	"time"

	"github.com/bougou/go-ipmi/pkg/clock"
	"github.com/bougou/go-ipmi/pkg/hal"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
)

// simHAL is the go-ipmi hardware abstraction of one virtual BMC: chassis
// power from the model, the SDR repository of its personality and a FRU
// carrying its identity. It also leads handlers back to their Server.
type simHAL struct{ s *Server }

var _ hal.HAL = (*simHAL)(nil)

func (h *simHAL) Chassis() hal.ChassisHAL { return simChassis{h.s} }
func (h *simHAL) Sensors() hal.SensorHAL  { return nil } // sensors are served by our own handlers
func (h *simHAL) Storage() hal.StorageHAL { return simStorage{h.s} }
func (h *simHAL) Network() hal.NetworkHAL { return nil }
func (h *simHAL) GPIO() hal.GPIOHAL       { return nil }
func (h *simHAL) I2C() hal.I2CHAL         { return nil }
func (h *simHAL) Console() hal.ConsoleHAL { return nil } // no SOL
func (h *simHAL) Close() error            { return nil }

// simChassis maps chassis control onto the model: powering off sets the
// PowerOff fault, so Redfish and IPMI agree on the power state.
type simChassis struct{ s *Server }

func (c simChassis) PowerState(context.Context) (bool, error) { return c.s.b.PoweredOn(), nil }

func (c simChassis) SetPower(_ context.Context, on bool) error {
	f := c.s.b.Faults()
	f.PowerOff = !on
	c.s.b.SetFaults(f)
	return nil
}

// PowerCycle, ColdReset and WarmReset are instantaneous in the simulator.
// go-ipmi calls ColdReset for both "chassis power reset" and "mc reset
// cold", so it cannot mean a BMC reset here.
func (simChassis) PowerCycle(context.Context) error             { return nil }
func (simChassis) ColdReset(context.Context) error              { return nil }
func (simChassis) WarmReset(context.Context) error              { return nil }
func (simChassis) Identify(context.Context, uint8) error        { return nil }
func (simChassis) IntrusionState(context.Context) (bool, error) { return false, nil }

func (simChassis) SetBootFlags(context.Context, *types.BootOptionParam_BootFlags) error {
	return hal.ErrNotSupported
}

func (simChassis) GetBootFlags(context.Context) (*types.BootOptionParam_BootFlags, error) {
	return nil, hal.ErrNotSupported
}

func (simChassis) SetBootInfoAcknowledge(context.Context, *types.BootOptionParam_BootInfoAcknowledge) error {
	return hal.ErrNotSupported
}

func (simChassis) GetBootInfoAcknowledge(context.Context) (*types.BootOptionParam_BootInfoAcknowledge, error) {
	return nil, hal.ErrNotSupported
}

// simStorage serves the read-only SDR repository and FRU device 0.
type simStorage struct{ s *Server }

func (st simStorage) FRU() hal.FRUStore { return fruStore(st) }
func (st simStorage) SDR() hal.SDRStore { return sdrStore{st.s.profile} }

// sdrStore hands out the personality's shared records; go-ipmi's handlers
// only read them.
type sdrStore struct{ pr *profile }

func (d sdrStore) Read(_ context.Context, recordID uint16) ([]byte, error) {
	if recordID == 0 || int(recordID) > len(d.pr.records) {
		return nil, hal.ErrNotFound
	}
	return d.pr.records[recordID-1], nil
}

func (d sdrStore) RecordIDs(context.Context) ([]uint16, error) { return d.pr.recordIDs, nil }
func (sdrStore) Write(context.Context, uint16, []byte) error   { return hal.ErrNotSupported }
func (sdrStore) Delete(context.Context, uint16) error          { return hal.ErrNotSupported }

// fruStore serves the board/product FRU (device 0) built for this BMC.
type fruStore struct{ s *Server }

func (f fruStore) Read(_ context.Context, deviceID uint8) ([]byte, error) {
	if deviceID != 0 || len(f.s.fru) == 0 {
		return nil, hal.ErrNotFound
	}
	return f.s.fru, nil
}

func (f fruStore) DeviceIDs(context.Context) ([]uint8, error) { return []uint8{0}, nil }
func (fruStore) Write(context.Context, uint8, []byte) error   { return hal.ErrNotSupported }
func (fruStore) Delete(context.Context, uint8) error          { return hal.ErrNotSupported }

// buildFRU packs the FRU inventory of a virtual BMC: chassis, board and
// product areas with the personality's manufacturer and model and the
// BMC's serial, so an IPMI poller finds the same identity Redfish reports.
func buildFRU(b *model.BMC) ([]byte, error) {
	p := b.Personality
	return types.PackFRU(types.FRUPackConfig{
		Chassis: &types.FRUPackChassis{Type: 0x17, Serial: b.Serial}, // rack mount chassis
		Board: &types.FRUPackBoard{
			Mfg:     p.Manufacturer,
			Product: p.Model,
			Serial:  b.Serial,
		},
		Product: &types.FRUPackProduct{
			Manufacturer: p.Manufacturer,
			Name:         p.Model,
			Version:      p.BIOS,
			Serial:       b.Serial,
		},
	})
}

// sessionClock is the go-ipmi clock of one virtual BMC. It reads
// Options.Now plus an offset that jumps forward to forget every session at
// once (the DropIPMISessions fault): session expiry compares times of this
// clock only. Its tickers never fire: go-ipmi's only ticker is the 3 s
// session eviction scan, which would wake 10 000 idle BMCs 3 300 times a
// second; the Server evicts expired sessions when a packet arrives instead.
type sessionClock struct{ s *Server }

var _ clock.Clock = sessionClock{}

func (c sessionClock) Now() time.Time {
	return c.s.now().Add(time.Duration(c.s.clockShift.Load()))
}

func (sessionClock) NewTimer(d time.Duration) clock.Timer { return clock.Real.NewTimer(d) }

func (sessionClock) NewTicker(time.Duration) clock.Ticker { return silentTicker{} }

// silentTicker never ticks; receiving from its nil channel blocks forever.
type silentTicker struct{}

func (silentTicker) C() <-chan time.Time { return nil }
func (silentTicker) Stop()               {}
