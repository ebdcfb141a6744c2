package model

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Room is the environment of a fleet: per-rack intake air that drifts over
// the day and per-BMC load curves. Everything is a pure function of the seed
// and the time, so two servers (Redfish and IPMI) asked about the same BMC
// at the same instant agree, and a run can be reproduced.
type Room struct {
	Seed int64
}

func (r Room) hash(s string) float64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range 8 {
		b[i] = byte(r.Seed >> (8 * i))
	}
	_, _ = h.Write(b[:])
	_, _ = h.Write([]byte(s))
	return float64(h.Sum64()%1_000_000) / 1_000_000
}

// RackIntake is a rack's inlet air temperature in °C at time t: a base of
// 19-25 °C per rack, a slow swing of ±2 °C over an hour and a faster
// ±0.5 °C over ten minutes (CRAC cycling).
func (r Room) RackIntake(rack string, t time.Time) float64 {
	s := float64(t.UnixMilli()) / 1000
	base := 19 + 6*r.hash("rack-base/"+rack)
	slow := 2 * math.Sin(2*math.Pi*s/3600+2*math.Pi*r.hash("rack-slow/"+rack))
	fast := 0.5 * math.Sin(2*math.Pi*s/600+2*math.Pi*r.hash("rack-fast/"+rack))
	return base + slow + fast
}

// Load is a server's utilisation in [0.05, 0.95] at time t.
func (r Room) Load(bmc string, t time.Time) float64 {
	s := float64(t.UnixMilli()) / 1000
	period := 600 + 1800*r.hash("load-period/"+bmc)
	v := 0.5 + 0.4*math.Sin(2*math.Pi*s/period+2*math.Pi*r.hash("load-phase/"+bmc))
	return math.Max(0.05, math.Min(0.95, v))
}

// Faults are what an operator (or a test) injects into one virtual BMC.
// The zero value is a healthy BMC.
type Faults struct {
	// LatencyMedianMs and LatencyP99Ms shape a log-normal per-request
	// latency; zero means answer at once.
	LatencyMedianMs float64 `json:"latency_median_ms,omitempty"`
	LatencyP99Ms    float64 `json:"latency_p99_ms,omitempty"`
	// BlackHole: accept nothing and answer nothing (a wedged BMC): HTTP
	// requests hang until the client gives up, IPMI packets are dropped.
	BlackHole bool `json:"black_hole,omitempty"`
	// Down: the BMC is gone (connection refused on HTTP, no answer on IPMI)
	// until the fault is cleared: a BMC that dies and comes back.
	Down bool `json:"down,omitempty"`
	// HTTPStatus answers every Redfish request but the service root with
	// this status (503, 429), with RetryAfterSeconds when set.
	HTTPStatus        int `json:"http_status,omitempty"`
	RetryAfterSeconds int `json:"retry_after_seconds,omitempty"`
	// MalformedJSON truncates sensor resources mid-document.
	MalformedJSON bool `json:"malformed_json,omitempty"`
	// WrongTypes puts "N/A" where a number belongs and 35.5 where an
	// integer belongs in sensor resources.
	WrongTypes bool `json:"wrong_types,omitempty"`
	// DropIPMISessions forgets every IPMI session silently (the client sees
	// timeouts), as a BMC does after a reset or an idle expiry.
	DropIPMISessions bool `json:"drop_ipmi_sessions,omitempty"`
	// FanFailed makes fan with this 1-based index read 0 with critical health.
	FanFailed int `json:"fan_failed,omitempty"`
	// IntakeOffset adds degrees to this BMC's intake (a blocked vent).
	IntakeOffset float64 `json:"intake_offset,omitempty"`
	// PowerOff reports the chassis powered off (load and power drop).
	PowerOff bool `json:"power_off,omitempty"`
	// PSUFailed and PSUInputLost assert the failure and the input lost
	// states of the PSU with this 1-based index; FanRedundancyLost the fan
	// redundancy sensor's redundancy lost (see discrete.go).
	PSUFailed         int  `json:"psu_failed,omitempty"`
	PSUInputLost      int  `json:"psu_input_lost,omitempty"`
	FanRedundancyLost bool `json:"fan_redundancy_lost,omitempty"`
}

// BMC is one virtual BMC.
type BMC struct {
	ID          string
	Rack        string
	Personality *Personality
	Room        Room
	Username    string
	Password    string
	Serial      string
	UUID        [16]byte

	faults atomic.Pointer[Faults]
}

// NewBMC makes a virtual BMC with identity derived from the room's seed.
func NewBMC(id, rack string, p *Personality, room Room, user, password string) *BMC {
	b := &BMC{ID: id, Rack: rack, Personality: p, Room: room, Username: user, Password: password}
	b.Serial = serialOf(room, id)
	h := fnv.New128a()
	_, _ = h.Write([]byte(id))
	copy(b.UUID[:], h.Sum(nil))
	b.faults.Store(&Faults{})
	return b
}

func serialOf(room Room, id string) string {
	const digits = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
	v := uint64(room.hash("serial/"+id) * 1e15)
	out := make([]byte, 10)
	for i := range out {
		out[i] = digits[v%uint64(len(digits))]
		v /= uint64(len(digits))
	}
	return string(out)
}

// Faults returns the BMC's current faults.
func (b *BMC) Faults() Faults { return *b.faults.Load() }

// SetFaults replaces the BMC's faults; safe while it serves requests.
func (b *BMC) SetFaults(f Faults) { b.faults.Store(&f) }

// Latency draws one request's latency from the BMC's log-normal latency
// fault: median m and 99th percentile p give sigma = ln(p/m)/2.326.
func (b *BMC) Latency(rng *rand.Rand) time.Duration {
	f := b.faults.Load()
	if f.LatencyMedianMs <= 0 {
		return 0
	}
	sigma := 0.0
	if f.LatencyP99Ms > f.LatencyMedianMs {
		sigma = math.Log(f.LatencyP99Ms/f.LatencyMedianMs) / 2.326
	}
	ms := f.LatencyMedianMs * math.Exp(sigma*rng.NormFloat64())
	return time.Duration(ms * float64(time.Millisecond))
}

// PoweredOn reports the chassis power state.
func (b *BMC) PoweredOn() bool { return !b.faults.Load().PowerOff }

// Reading is one sensor's value at an instant.
type Reading struct {
	Spec *SensorSpec
	// Value in the sensor's natural unit: °C, RPM (fans, even when the
	// vendor reports Percent: use Percent()), W, V, A.
	Value float64
	// Health is "OK", "Warning" or "Critical" from the thresholds (or a fault).
	Health string
	// State is "Enabled" or "Absent".
	State string
}

// Percent is a fan reading as a percentage of the fan's maximum RPM.
func (r Reading) Percent() float64 {
	max := r.Spec.Nominal
	if max <= 0 {
		max = 16000
	}
	return math.Round(100 * r.Value / max)
}

// Intake is the BMC's inlet temperature at t, faults included.
func (b *BMC) Intake(t time.Time) float64 {
	return b.Room.RackIntake(b.Rack, t) + b.faults.Load().IntakeOffset
}

// Load is the BMC's utilisation at t (0 when powered off).
func (b *BMC) Load(t time.Time) float64 {
	if !b.PoweredOn() {
		return 0
	}
	return b.Room.Load(b.ID, t)
}

// ChassisPower is the input power in watts at t.
func (b *BMC) ChassisPower(t time.Time) float64 {
	if !b.PoweredOn() {
		return 8 // standby
	}
	return math.Round(140 + 360*b.Load(t))
}

// Readings returns every sensor of the BMC at time t, in personality
// order. Values are rounded as BMCs report them (0.1 °C would be generous:
// most report whole degrees; we keep one decimal to make drift visible).
func (b *BMC) Readings(t time.Time) []Reading {
	p := b.Personality
	f := b.faults.Load()
	intake := b.Intake(t)
	load := b.Load(t)
	cpu := intake + 18 + 40*load
	power := b.ChassisPower(t)
	nPSU := float64(max(1, len(p.PSUs)))
	out := make([]Reading, 0, len(p.Sensors))
	for i := range p.Sensors {
		s := &p.Sensors[i]
		r := Reading{Spec: s, State: "Enabled", Health: "OK"}
		if s.Absent {
			r.State = "Absent"
			out = append(out, r)
			continue
		}
		switch s.Source {
		case SourceIntake:
			r.Value = round1(intake + s.Nominal)
		case SourceExhaust:
			r.Value = round1(intake + 6 + 14*load + s.Nominal)
		case SourceCPU:
			r.Value = round1(cpu + s.Nominal + float64(s.Index))
		case SourceMemory:
			r.Value = round1(intake + 8 + 15*load + s.Nominal)
		case SourcePSU:
			r.Value = round1(intake + 10 + 12*load + s.Nominal)
		case SourceSystemBoard:
			r.Value = round1(intake + 4 + 8*load + s.Nominal)
		case SourceGPU:
			r.Value = round1(intake + 25 + 45*load + s.Nominal)
		case SourceStorage:
			r.Value = round1(intake + 9 + 4*load + s.Nominal)
		case SourceMargin:
			// Lenovo's DTS: degrees below the throttle point, negative.
			r.Value = round1(-(95 - cpu))
		case SourceFan:
			maxRPM := s.Nominal
			if maxRPM <= 0 {
				maxRPM = 16000
			}
			frac := math.Max(0.2, math.Min(1, 0.2+(cpu-45)/60))
			r.Value = math.Round(maxRPM*frac/10) * 10
			if f.FanFailed == s.Index+1 {
				r.Value = 0
				r.Health = "Critical"
			}
		case SourceChassisPower:
			r.Value = power
		case SourcePSUInput:
			r.Value = math.Round(power / nPSU)
		case SourcePSUOutput:
			r.Value = math.Round(power / nPSU * 0.94)
		case SourceVoltage:
			ripple := 0.004 * math.Sin(float64(t.UnixMilli())/7000+b.Room.hash("v/"+b.ID+s.Name)*6)
			r.Value = math.Round(s.Nominal*(1+ripple)*1000) / 1000
		case SourceCurrent:
			r.Value = math.Round(power/230*100) / 100
		}
		if r.Health == "OK" {
			r.Health = health(r.Value, s.Thresholds)
		}
		out = append(out, r)
	}
	return out
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func health(v float64, th map[string]float64) string {
	crit := func(k string, above bool) bool {
		x, ok := th[k]
		if !ok {
			return false
		}
		if above {
			return v >= x
		}
		return v <= x
	}
	switch {
	case crit("upper_fatal", true), crit("upper_critical", true), crit("lower_fatal", false), crit("lower_critical", false):
		return "Critical"
	case crit("upper_caution", true), crit("lower_caution", false):
		return "Warning"
	}
	return "OK"
}

// Health is the BMC's rollup: the worst sensor health.
func (b *BMC) Health(t time.Time) string {
	worst := "OK"
	for _, r := range b.Readings(t) {
		if r.Health == "Critical" {
			return "Critical"
		}
		if r.Health == "Warning" {
			worst = "Warning"
		}
	}
	return worst
}
