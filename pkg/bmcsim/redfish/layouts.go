package redfish

import (
	"math"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
)

// This file holds the layouts real BMCs serve beside the current DMTF
// shapes: iLO 4's pre-1.0 Thermal and Power, legacy members linking what
// they measure (RelatedItem), and the chassis EnvironmentMetrics of
// subsystem-only services.

// legacyPath is the URI of a legacy resource (Thermal, Power) as the
// personality writes it: iLO 4 ends every "@odata.id" with a slash.
func (m *modelBackend) legacyPath(name string) string {
	if m.p.Redfish.Style == model.StyleILO4 {
		return m.chassisPath + "/" + name + "/"
	}
	return m.chassisPath + "/" + name
}

// relatedItem adds a legacy member's RelatedItem when the personality
// serves one: the system for processor and memory sensors (Dell and
// Supermicro point at the Processor; bmcsim serves no Processors, so the
// system that holds it), the chassis for everything else.
func (m *modelBackend) relatedItem(o obj, s *model.SensorSpec) obj {
	if !m.p.Redfish.RelatedItem {
		return o
	}
	target := m.chassisPath
	switch s.Source {
	case model.SourceCPU, model.SourceMemory, model.SourceMargin:
		target = m.systemPath
	}
	return o.add("RelatedItem", []any{link(target)}).add("RelatedItem@odata.count", 1)
}

// thermalILO4 is the Thermal resource as iLO 4 serves it (schema 1.1.0,
// before DMTF's "v1_x_y" type names): temperatures carry CurrentReading
// beside ReadingCelsius, Units "Celsius" and a Number; fans are named by
// FanName and read CurrentReading in Units; no member has an "@odata.id"
// or MemberId; an absent sensor reads 0 with thresholds 0.
func (m *modelBackend) thermalILO4(rc *renderCtx) obj {
	rs := m.readings(rc)
	temps, fans := []obj{}, []obj{}
	var shown []model.Reading
	for _, si := range m.sensors {
		r, s := rs[si.idx], si.spec
		switch s.Kind {
		case model.KindTemperature:
			v := rc.intReading(r.Value)
			t := obj{}.
				add("CurrentReading", v).
				add("Name", s.Name).
				add("Number", len(temps)+1).
				addIf(s.Context != "", "PhysicalContext", s.Context).
				add("ReadingCelsius", v).
				add("Status", sensorStatus(r)).
				add("Units", "Celsius")
			for _, n := range thresholdNames() {
				if th, ok := s.Thresholds[n.key]; ok {
					if r.State == "Absent" {
						th = 0
					}
					t = t.add(n.legacy, int(math.Round(th)))
				}
			}
			temps = append(temps, t)
		case model.KindFan:
			units := "RPM"
			if s.Unit == "Percent" {
				units = "Percent"
			}
			fans = append(fans, obj{}.
				add("CurrentReading", rc.intReading(shownValue(r))).
				add("FanName", s.Name).
				add("Status", sensorStatus(r)).
				add("Units", units))
		default:
			continue
		}
		shown = append(shown, r)
	}
	return obj{}.
		add("@odata.id", m.legacyPath("Thermal")).
		add("@odata.type", "#Thermal.1.1.0.Thermal").
		add("Fans", fans).
		add("Id", "Thermal").
		add("Name", "Thermal").
		add("Status", status("Enabled", worstHealth(shown))).
		add("Temperatures", temps)
}

// powerILO4 is the Power resource as iLO 4 serves it (schema 1.0.1): the
// chassis consumption both at the top and in one PowerControl without
// MemberId, power supplies without "@odata.id" reporting only
// LastPowerOutputWatts (no input power), averaged over 20 minutes.
func (m *modelBackend) powerILO4(rc *renderCtx) obj {
	rs := m.readings(rc)
	capacity := m.capacityWatts()
	var consumed any
	var shown []model.Reading
	for _, si := range m.sensors {
		if si.spec.Source == model.SourceChassisPower {
			r := rs[si.idx]
			consumed = rc.intReading(r.Value)
			shown = append(shown, r)
			break
		}
	}
	metrics := m.powerMetrics(rc)
	for i := range metrics {
		if metrics[i].key == "IntervalInMin" {
			metrics[i].val = 20
		}
	}
	control := obj{}.add("PowerCapacityWatts", capacity)
	if consumed != nil {
		control = control.add("PowerConsumedWatts", consumed)
	}
	control = control.add("PowerMetrics", metrics)
	supplies := []obj{}
	for i := range m.psus {
		ps := &m.psus[i]
		o := obj{}.add("FirmwareVersion", "1.00")
		if ps.output >= 0 {
			o = o.add("LastPowerOutputWatts", rc.intReading(rs[m.sensors[ps.output].idx].Value))
		}
		health := m.psuHealth(rs, ps)
		supplies = append(supplies, o.
			addIf(ps.spec.Model != "", "Model", ps.spec.Model).
			add("Name", ps.spec.Name).
			add("PowerCapacityWatts", ps.spec.RatedWatts).
			add("PowerSupplyType", "AC").
			add("SerialNumber", m.psuSerial(ps)).
			add("Status", obj{}.add("Health", health).add("State", "Enabled")))
		shown = append(shown, model.Reading{Health: health})
	}
	o := obj{}.
		add("@odata.id", m.legacyPath("Power")).
		add("@odata.type", "#Power.1.0.1.Power").
		add("Id", "Power").
		add("Name", "PowerMetrics").
		add("PowerCapacityWatts", capacity)
	if consumed != nil {
		o = o.add("PowerConsumedWatts", consumed)
	}
	return o.
		add("PowerControl", []obj{control}).
		add("PowerMetrics", metrics).
		add("PowerSupplies", supplies).
		add("Status", status("Enabled", worstHealth(shown)))
}

// environmentMetrics is a chassis's EnvironmentMetrics (v1_3_0): the
// chassis input power and every fan's speed as excerpts of their Sensors,
// as NVIDIA's OpenBMC serves it on subsystem-only chassis.
func (m *modelBackend) environmentMetrics(rc *renderCtx) obj {
	rs := m.readings(rc)
	o := obj{}.
		add("@odata.id", m.chassisPath+"/EnvironmentMetrics").
		add("@odata.type", "#EnvironmentMetrics.v1_3_0.EnvironmentMetrics").
		add("@odata.etag", etagSlot{}).
		add("Id", "EnvironmentMetrics").
		add("Name", "Chassis Environment Metrics")
	fans := []obj{}
	for i := range m.fans {
		f := &m.fans[i]
		primary := &m.sensors[f.primary]
		r := rs[primary.idx]
		source := primary
		if f.percent >= 0 {
			source = &m.sensors[f.percent]
		}
		fans = append(fans, m.dataSource(obj{}, source).
			add("DeviceName", primary.spec.Name).
			addIf(primary.spec.Context != "", "PhysicalContext", primary.spec.Context).
			add("Reading", rc.reading(r.Percent())).
			add("SpeedRPM", rc.reading(r.Value)))
	}
	o = o.add("FanSpeedsPercent", fans).add("FanSpeedsPercent@odata.count", len(fans))
	for i := range m.sensors {
		si := &m.sensors[i]
		if si.spec.Source == model.SourceChassisPower {
			o = o.add("PowerWatts", m.excerpt(rc, si))
			break
		}
	}
	return o
}
