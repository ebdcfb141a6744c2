package redfish

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
)

// modelBackend renders a model.BMC's resources live. Everything that follows
// from the personality alone (paths, sensor ids, fan and PSU grouping) is
// worked out once here, so a request only computes readings.
type modelBackend struct {
	b *model.BMC
	p *model.Personality

	chassisPath string
	systemPath  string
	managerPath string

	serviceUUID string
	systemUUID  string

	// sensors are the personality's sensors Redfish shows, in personality
	// order; idx indexes b.Readings.
	sensors []sensorInfo
	fans    []fanInfo
	psus    []psuInfo
	cpus    int
}

type sensorInfo struct {
	idx  int
	spec *model.SensorSpec
	// id is the member id in the Sensors collection.
	id string
	// member: the Sensor resource exists (a modern service, and the
	// sensor not kept out of the Sensors collection). listed: the Sensors
	// collection lists it (a service with that collection).
	member, listed bool
}

// fanInfo is one physical fan of the modern ThermalSubsystem: the fan
// sensors of one index (a tachometer and maybe a PWM percentage).
type fanInfo struct {
	id      string
	primary int // index into sensors: the RPM sensor if any
	percent int // index into sensors of a Percent sensor, or -1
}

// psuInfo is one power supply with the sensors that measure it.
type psuInfo struct {
	id     string // "Bay1", as DMTF's mockups number bays
	spec   model.PSUSpec
	index  int
	input  int // index into sensors, or -1
	output int // index into sensors, or -1
}

func newModelBackend(b *model.BMC) *modelBackend {
	p := b.Personality
	m := &modelBackend{
		b:           b,
		p:           p,
		chassisPath: pathChassis + "/" + p.Redfish.ChassisID,
		systemPath:  pathSystems + "/" + p.Redfish.SystemID,
		managerPath: pathManagers + "/" + p.Redfish.ManagerID,
		systemUUID:  formatUUID(b.UUID),
	}
	h := fnv.New128a()
	_, _ = h.Write([]byte("redfish-service/" + b.ID))
	var su [16]byte
	copy(su[:], h.Sum(nil))
	m.serviceUUID = formatUUID(su)

	seen := map[string]int{}
	cpuIdx := map[int]bool{}
	for i := range p.Sensors {
		s := &p.Sensors[i]
		if s.Source == model.SourceCPU {
			cpuIdx[s.Index] = true
		}
		if s.RedfishOmit {
			continue
		}
		id := sensorID(s.Name)
		if n := seen[id]; n > 0 {
			seen[id] = n + 1
			id += "_" + strconv.Itoa(n+1)
		} else {
			seen[id] = 1
		}
		member := p.Redfish.Modern && !s.SensorsOmit
		m.sensors = append(m.sensors, sensorInfo{idx: i, spec: s, id: id, member: member, listed: member && !p.Redfish.NoSensors})
	}
	m.cpus = max(1, len(cpuIdx))

	// Group fan sensors by index, in order of first appearance. A
	// tachometer is the fan's identity and RPM source; a PWM sensor of the
	// same index, when there is one, is its SpeedPercent's data source.
	byIndex := map[int]int{}
	for si, s := range m.sensors {
		if s.spec.Kind != model.KindFan {
			continue
		}
		fi, ok := byIndex[s.spec.Index]
		if !ok {
			fi = len(m.fans)
			byIndex[s.spec.Index] = fi
			m.fans = append(m.fans, fanInfo{primary: -1, percent: -1})
		}
		f := &m.fans[fi]
		switch {
		case s.spec.Unit == "Percent" && f.percent < 0:
			f.percent = si
		case s.spec.Unit != "Percent" && f.primary < 0:
			f.primary = si
		}
	}
	for i := range m.fans {
		f := &m.fans[i]
		if f.primary < 0 {
			f.primary = f.percent
		}
		f.id = m.sensors[f.primary].id
	}

	for i, ps := range p.PSUs {
		pi := psuInfo{id: "Bay" + strconv.Itoa(i+1), spec: ps, index: i, input: -1, output: -1}
		for si, s := range m.sensors {
			if s.spec.Index != i {
				continue
			}
			switch {
			case s.spec.Source == model.SourcePSUInput && pi.input < 0:
				pi.input = si
			case s.spec.Source == model.SourcePSUOutput && pi.output < 0:
				pi.output = si
			}
		}
		m.psus = append(m.psus, pi)
	}
	return m
}

// readings returns the BMC's readings at the request's instant, computing
// them once per request.
func (m *modelBackend) readings(rc *renderCtx) []model.Reading {
	if rc.rs == nil {
		rc.rs = m.b.Readings(rc.t)
	}
	return rc.rs
}

// sensorID makes a URI-safe member id from a vendor sensor name, as DMTF's
// mockups do ("CPU1 Temp" becomes "CPU1Temp").
func sensorID(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "Sensor"
	}
	return b.String()
}

func formatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func (m *modelBackend) route(p string) (route, bool) {
	legacy, modern := m.p.Redfish.Legacy, m.p.Redfish.Modern
	switch p {
	case pathVersions:
		return route{render: func(*renderCtx) obj { return obj{}.add("v1", "/redfish/v1/") }}, true
	case pathServiceRoot:
		return route{render: m.serviceRoot}, true
	case pathOData:
		return route{render: m.odata}, true
	case pathMetadata:
		return route{raw: m.metadata(), contentType: "application/xml"}, true
	case pathChassis:
		return route{render: func(rc *renderCtx) obj {
			return m.collection(rc, pathChassis, "ChassisCollection", "Chassis Collection", false, []string{m.chassisPath})
		}}, true
	case pathSystems:
		return route{render: func(rc *renderCtx) obj {
			return m.collection(rc, pathSystems, "ComputerSystemCollection", "Computer System Collection", false, []string{m.systemPath})
		}}, true
	case pathManagers:
		return route{render: func(rc *renderCtx) obj {
			return m.collection(rc, pathManagers, "ManagerCollection", "Manager Collection", false, []string{m.managerPath})
		}}, true
	case m.chassisPath:
		return route{render: m.chassis}, true
	case m.systemPath:
		return route{render: m.system}, true
	case m.managerPath:
		return route{render: m.manager}, true
	}

	rest, ok := strings.CutPrefix(p, m.chassisPath+"/")
	if !ok {
		return route{}, false
	}
	seg := strings.Split(rest, "/")
	switch {
	case legacy && rest == "Thermal" && m.p.Redfish.Style == model.StyleILO4:
		return route{render: m.thermalILO4, sensor: true, slow: true}, true
	case legacy && rest == "Power" && m.p.Redfish.Style == model.StyleILO4:
		return route{render: m.powerILO4, sensor: true, slow: true}, true
	case legacy && rest == "Thermal":
		return route{render: m.thermal, sensor: true, slow: true}, true
	case legacy && rest == "Power":
		return route{render: m.power, sensor: true, slow: true}, true
	case !modern:
		return route{}, false
	case rest == "ThermalSubsystem":
		return route{render: m.thermalSubsystem, sensor: true, slow: true}, true
	case rest == "ThermalSubsystem/ThermalMetrics":
		return route{render: m.thermalMetrics, sensor: true}, true
	case rest == "ThermalSubsystem/Fans":
		return route{render: m.fanCollection, sensor: true}, true
	case len(seg) == 3 && seg[0] == "ThermalSubsystem" && seg[1] == "Fans":
		for i := range m.fans {
			if m.fans[i].id == seg[2] {
				f := &m.fans[i]
				return route{render: func(rc *renderCtx) obj { return m.fan(rc, f) }, sensor: true}, true
			}
		}
	case rest == "PowerSubsystem":
		return route{render: m.powerSubsystem, sensor: true, slow: true}, true
	case rest == "PowerSubsystem/PowerSupplies":
		return route{render: m.psuCollection, sensor: true}, true
	case len(seg) >= 3 && len(seg) <= 4 && seg[0] == "PowerSubsystem" && seg[1] == "PowerSupplies":
		for i := range m.psus {
			if m.psus[i].id != seg[2] {
				continue
			}
			ps := &m.psus[i]
			if len(seg) == 3 {
				return route{render: func(rc *renderCtx) obj { return m.psu(rc, ps) }, sensor: true}, true
			}
			if seg[3] == "Metrics" {
				return route{render: func(rc *renderCtx) obj { return m.psuMetrics(rc, ps) }, sensor: true}, true
			}
		}
	case rest == "EnvironmentMetrics" && m.p.Redfish.EnvironmentMetrics:
		return route{render: m.environmentMetrics, sensor: true}, true
	case rest == "Sensors" && !m.p.Redfish.NoSensors:
		return route{render: m.sensorCollection, sensor: true, slow: true}, true
	case len(seg) == 2 && seg[0] == "Sensors":
		for i := range m.sensors {
			if m.sensors[i].id == seg[1] && m.sensors[i].member {
				si := &m.sensors[i]
				return route{render: func(rc *renderCtx) obj { return m.sensor(rc, si) }, sensor: true}, true
			}
		}
	}
	return route{}, false
}

// collection renders a resource collection. With $expand (which only
// modern personalities announce and honour) members are rendered inline.
func (m *modelBackend) collection(rc *renderCtx, self, typ, name string, sensor bool, members []string) obj {
	o := obj{}.
		add("@odata.id", self).
		add("@odata.type", "#"+typ+"."+typ).
		addIf(sensor && !rc.inline, "@odata.etag", etagSlot{}).
		add("Name", name)
	list := make([]any, len(members))
	expand := rc.expand && m.p.Redfish.Modern
	var sub renderCtx
	if expand {
		m.readings(rc)
		sub = *rc
		sub.expand, sub.inline = false, true
	}
	for i, mp := range members {
		list[i] = link(mp)
		if !expand {
			continue
		}
		if rt, ok := m.route(mp); ok && rt.render != nil {
			list[i] = rt.render(&sub)
		}
	}
	return o.add("Members", list).add("Members@odata.count", len(members))
}

func (m *modelBackend) serviceRoot(*renderCtx) obj {
	version, typ := "1.6.0", "#ServiceRoot.v1_5_0.ServiceRoot"
	features := obj{}.
		add("FilterQuery", false).
		add("SelectQuery", false).
		add("OnlyMemberQuery", false)
	if m.p.Redfish.Modern {
		version, typ = "1.17.0", "#ServiceRoot.v1_15_0.ServiceRoot"
		features = obj{}.
			add("ExpandQuery", obj{}.
				add("ExpandAll", true).
				add("Levels", true).
				add("Links", false).
				add("NoLinks", true).
				add("MaxLevels", 1)).
			add("FilterQuery", false).
			add("SelectQuery", false).
			add("OnlyMemberQuery", false).
			add("ExcerptQuery", false)
	}
	return obj{}.
		add("@odata.id", "/redfish/v1/").
		add("@odata.type", typ).
		add("Id", "RootService").
		add("Name", "Root Service").
		add("RedfishVersion", version).
		add("UUID", m.serviceUUID).
		add("Vendor", m.p.Manufacturer).
		add("Product", m.p.Model).
		add("ProtocolFeaturesSupported", features).
		add("Chassis", link(pathChassis)).
		add("Systems", link(pathSystems)).
		add("Managers", link(pathManagers)).
		add("SessionService", link(pathSessionService)).
		add("Links", obj{}.add("Sessions", link(pathSessions)))
}

func (m *modelBackend) odata(*renderCtx) obj {
	entry := func(name, url string) obj {
		return obj{}.add("name", name).add("kind", "Singleton").add("url", url)
	}
	return obj{}.
		add("@odata.context", pathMetadata).
		add("value", []obj{
			entry("Service", "/redfish/v1/"),
			entry("Chassis", pathChassis),
			entry("Systems", pathSystems),
			entry("Managers", pathManagers),
			entry("SessionService", pathSessionService),
			entry("Sessions", pathSessions),
		})
}

// metadata is a minimal CSDL document: references to the DMTF schemas this
// service uses and the entity container. It is built per request (rarely
// asked for) rather than kept by each of thousands of handlers.
func (m *modelBackend) metadata() []byte {
	root, chassis := "ServiceRoot.v1_5_0", "Chassis.v1_10_0"
	if m.p.Redfish.Modern {
		root, chassis = "ServiceRoot.v1_15_0", "Chassis.v1_21_0"
	}
	refs := []string{
		root, "ChassisCollection", chassis,
		"ComputerSystemCollection", "ComputerSystem.v1_20_0",
		"ManagerCollection", "Manager.v1_19_0",
		"SessionService.v1_1_8", "SessionCollection", "Session.v1_6_0", "Message.v1_1_1",
	}
	switch {
	case m.p.Redfish.Legacy && m.p.Redfish.Style == model.StyleILO4:
		refs = append(refs, "Thermal.1.1.0", "Power.1.0.1")
	case m.p.Redfish.Legacy:
		refs = append(refs, "Thermal.v1_7_0", "Power.v1_7_1")
	}
	if m.p.Redfish.Modern {
		refs = append(refs, "ThermalSubsystem.v1_3_0", "ThermalMetrics.v1_3_0", "FanCollection", "Fan.v1_5_0",
			"PowerSubsystem.v1_1_0", "PowerSupplyCollection", "PowerSupply.v1_5_0", "PowerSupplyMetrics.v1_1_0",
			"Sensor.v1_7_0")
		if !m.p.Redfish.NoSensors {
			refs = append(refs, "SensorCollection")
		}
		if m.p.Redfish.EnvironmentMetrics {
			refs = append(refs, "EnvironmentMetrics.v1_3_0")
		}
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">` + "\n")
	for _, r := range refs {
		ns, _, _ := strings.Cut(r, ".")
		fmt.Fprintf(&b, "  <edmx:Reference Uri=\"http://redfish.dmtf.org/schemas/v1/%s_v1.xml\">\n", ns)
		fmt.Fprintf(&b, "    <edmx:Include Namespace=\"%s\"/>\n", ns)
		if r != ns {
			fmt.Fprintf(&b, "    <edmx:Include Namespace=\"%s\"/>\n", r)
		}
		b.WriteString("  </edmx:Reference>\n")
	}
	b.WriteString("  <edmx:DataServices>\n")
	b.WriteString(`    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="Service">` + "\n")
	fmt.Fprintf(&b, "      <EntityContainer Name=\"Service\" Extends=\"%s.ServiceContainer\"/>\n", root)
	b.WriteString("    </Schema>\n  </edmx:DataServices>\n</edmx:Edmx>\n")
	return []byte(b.String())
}

func (m *modelBackend) powerState() string {
	if m.b.PoweredOn() {
		return "On"
	}
	return "Off"
}

// health is the worst health among the readings, as b.Health computes it,
// from readings the request already holds.
func worstHealth(rs []model.Reading) string {
	worst := "OK"
	for _, r := range rs {
		switch r.Health {
		case "Critical":
			return "Critical"
		case "Warning":
			worst = "Warning"
		}
	}
	return worst
}

func status(state, health string) obj {
	return obj{}.add("State", state).add("Health", health).add("HealthRollup", health)
}

func (m *modelBackend) chassis(rc *renderCtx) obj {
	health := worstHealth(m.readings(rc))
	typ := "#Chassis.v1_10_0.Chassis"
	if m.p.Redfish.Modern {
		typ = "#Chassis.v1_21_0.Chassis"
	}
	o := obj{}.
		add("@odata.id", m.chassisPath).
		add("@odata.type", typ).
		add("Id", m.p.Redfish.ChassisID).
		add("Name", "Computer System Chassis").
		add("ChassisType", "RackMount").
		add("Manufacturer", m.p.Manufacturer).
		add("Model", m.p.Model).
		add("SerialNumber", m.b.Serial).
		add("PowerState", m.powerState()).
		add("Status", status("Enabled", health))
	if m.p.Redfish.Legacy {
		o = o.add("Thermal", link(m.legacyPath("Thermal"))).
			add("Power", link(m.legacyPath("Power")))
	}
	if m.p.Redfish.Modern {
		o = o.add("ThermalSubsystem", link(m.chassisPath+"/ThermalSubsystem")).
			add("PowerSubsystem", link(m.chassisPath+"/PowerSubsystem")).
			addIf(!m.p.Redfish.NoSensors, "Sensors", link(m.chassisPath+"/Sensors")).
			addIf(m.p.Redfish.EnvironmentMetrics, "EnvironmentMetrics", link(m.chassisPath+"/EnvironmentMetrics"))
	}
	return o.add("Links", obj{}.
		add("ComputerSystems", []any{link(m.systemPath)}).
		add("ManagedBy", []any{link(m.managerPath)}))
}

func (m *modelBackend) system(rc *renderCtx) obj {
	health := worstHealth(m.readings(rc))
	ok := obj{}.add("State", "Enabled").add("Health", "OK")
	return obj{}.
		add("@odata.id", m.systemPath).
		add("@odata.type", "#ComputerSystem.v1_20_0.ComputerSystem").
		add("Id", m.p.Redfish.SystemID).
		add("Name", "System").
		add("SystemType", "Physical").
		add("Manufacturer", m.p.Manufacturer).
		add("Model", m.p.Model).
		add("SerialNumber", m.b.Serial).
		add("UUID", m.systemUUID).
		add("BiosVersion", m.p.BIOS).
		add("PowerState", m.powerState()).
		add("Status", status("Enabled", health)).
		add("ProcessorSummary", obj{}.add("Count", m.cpus).add("Status", ok)).
		add("MemorySummary", obj{}.add("TotalSystemMemoryGiB", 256).add("Status", ok)).
		add("Links", obj{}.
			add("Chassis", []any{link(m.chassisPath)}).
			add("ManagedBy", []any{link(m.managerPath)}))
}

func (m *modelBackend) manager(*renderCtx) obj {
	return obj{}.
		add("@odata.id", m.managerPath).
		add("@odata.type", "#Manager.v1_19_0.Manager").
		add("Id", m.p.Redfish.ManagerID).
		add("Name", "Manager").
		add("ManagerType", "BMC").
		add("Manufacturer", m.p.Manufacturer).
		add("Model", m.p.ManagerModel).
		add("FirmwareVersion", m.p.Firmware).
		add("UUID", m.serviceUUID).
		add("PowerState", "On").
		add("Status", obj{}.add("State", "Enabled").add("Health", "OK")).
		add("Links", obj{}.
			add("ManagerForChassis", []any{link(m.chassisPath)}).
			add("ManagerForServers", []any{link(m.systemPath)}))
}
