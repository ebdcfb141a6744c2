package redfish

import (
	"math"
	"strconv"
	"time"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
)

type thresholdName struct{ key, legacy, modern string }

// thresholdNames lists the threshold keys of the personality files, in the
// order the Redfish schemas list them, with their names in the legacy
// Thermal/Power schemas and in Sensor.Thresholds.
func thresholdNames() [6]thresholdName {
	return [6]thresholdName{
		{"upper_caution", "UpperThresholdNonCritical", "UpperCaution"},
		{"upper_critical", "UpperThresholdCritical", "UpperCritical"},
		{"upper_fatal", "UpperThresholdFatal", "UpperFatal"},
		{"lower_caution", "LowerThresholdNonCritical", "LowerCaution"},
		{"lower_critical", "LowerThresholdCritical", "LowerCritical"},
		{"lower_fatal", "LowerThresholdFatal", "LowerFatal"},
	}
}

// sensorStatus is a reading's Status; an absent sensor (an empty socket or
// bay) has a State and no Health, as iLO reports it.
func sensorStatus(r model.Reading) obj {
	if r.State == "Absent" {
		return obj{}.add("State", "Absent")
	}
	return obj{}.add("State", r.State).add("Health", r.Health)
}

// legacyThresholds adds a sensor's thresholds under their Thermal/Power
// names; integers says the schema types them as integers (fans).
func legacyThresholds(o obj, th map[string]float64, integers bool) obj {
	for _, n := range thresholdNames() {
		v, ok := th[n.key]
		if !ok {
			continue
		}
		if integers {
			o = o.add(n.legacy, int(math.Round(v)))
		} else {
			o = o.add(n.legacy, v)
		}
	}
	return o
}

// shownValue is what a sensor reads in its own unit: the model keeps fans
// in RPM, and a fan sensor reporting Percent shows the share of its maximum.
func shownValue(r model.Reading) float64 {
	if r.Spec.Kind == model.KindFan && r.Spec.Unit == "Percent" {
		return r.Percent()
	}
	return r.Value
}

func (m *modelBackend) sensorNumber(o obj, s *model.SensorSpec) obj {
	return o.addIf(!s.IPMI.Omit && s.IPMI.Number != 0, "SensorNumber", int(s.IPMI.Number))
}

// thermal is the legacy Thermal resource (Thermal.v1_7_0).
func (m *modelBackend) thermal(rc *renderCtx) obj {
	rs := m.readings(rc)
	self := m.legacyPath("Thermal")
	temps, fans := []obj{}, []obj{}
	var shown []model.Reading
	for _, si := range m.sensors {
		r, s := rs[si.idx], si.spec
		switch s.Kind {
		case model.KindTemperature:
			n := strconv.Itoa(len(temps))
			t := obj{}.
				add("@odata.id", self+"#/Temperatures/"+n).
				add("MemberId", n).
				add("Name", s.Name)
			t = m.sensorNumber(t, s).
				add("ReadingCelsius", rc.reading(r.Value)).
				addIf(s.Context != "", "PhysicalContext", s.Context)
			t = legacyThresholds(t, s.Thresholds, false)
			temps = append(temps, m.relatedItem(t, s).add("Status", sensorStatus(r)))
		case model.KindFan:
			n := strconv.Itoa(len(fans))
			f := obj{}.
				add("@odata.id", self+"#/Fans/"+n).
				add("MemberId", n).
				add("Name", s.Name).
				addIf(m.p.Redfish.FanName, "FanName", s.Name)
			f = m.sensorNumber(f, s).
				add("Reading", rc.intReading(shownValue(r))).
				// A vendor that omits units omits ReadingUnits; the schema
				// allows it, and clients must then guess RPM.
				addIf(s.Unit != "", "ReadingUnits", s.Unit).
				addIf(s.Context != "", "PhysicalContext", s.Context)
			f = legacyThresholds(f, s.Thresholds, true)
			fans = append(fans, m.relatedItem(f, s).add("Status", sensorStatus(r)))
		default:
			continue
		}
		shown = append(shown, r)
	}
	return obj{}.
		add("@odata.id", self).
		add("@odata.type", "#Thermal.v1_7_0.Thermal").
		add("@odata.etag", etagSlot{}).
		add("Id", "Thermal").
		add("Name", "Thermal").
		add("Temperatures", temps).
		add("Temperatures@odata.count", len(temps)).
		add("Fans", fans).
		add("Fans@odata.count", len(fans)).
		add("Status", status("Enabled", worstHealth(shown)))
}

// powerMetrics samples the chassis power over the last minute, as
// PowerControl.PowerMetrics reports (IntervalInMin 1).
func (m *modelBackend) powerMetrics(rc *renderCtx) obj {
	lo, hi, sum := math.Inf(1), math.Inf(-1), 0.0
	const samples = 13
	for k := range samples {
		v := m.b.ChassisPower(rc.t.Add(-time.Duration(k) * 5 * time.Second))
		lo, hi, sum = math.Min(lo, v), math.Max(hi, v), sum+v
	}
	return obj{}.
		add("IntervalInMin", 1).
		add("MinConsumedWatts", rc.reading(lo)).
		add("MaxConsumedWatts", rc.reading(hi)).
		add("AverageConsumedWatts", rc.reading(math.Round(sum/samples)))
}

func (m *modelBackend) capacityWatts() float64 {
	sum := 0.0
	for _, ps := range m.p.PSUs {
		sum += ps.RatedWatts
	}
	return sum
}

// psuHealth is the worst health of the sensors measuring one PSU; a PSU
// that failed or lost its input is Critical whether or not a sensor
// measures it.
func (m *modelBackend) psuHealth(rs []model.Reading, ps *psuInfo) string {
	if m.b.PSUDown(ps.index) {
		return "Critical"
	}
	var own []model.Reading
	for _, si := range []int{ps.input, ps.output} {
		if si >= 0 {
			own = append(own, rs[m.sensors[si].idx])
		}
	}
	return worstHealth(own)
}

func (m *modelBackend) psuSerial(ps *psuInfo) string {
	return m.b.Serial + "PS" + strconv.Itoa(ps.index+1)
}

// power is the legacy Power resource (Power.v1_7_1).
func (m *modelBackend) power(rc *renderCtx) obj {
	rs := m.readings(rc)
	self := m.legacyPath("Power")
	controls, supplies, volts := []obj{}, []obj{}, []obj{}
	var shown []model.Reading
	for _, si := range m.sensors {
		r, s := rs[si.idx], si.spec
		switch {
		case s.Source == model.SourceChassisPower && len(controls) == 0:
			controls = append(controls, obj{}.
				add("@odata.id", self+"#/PowerControl/0").
				add("MemberId", "0").
				add("Name", s.Name).
				add("PowerConsumedWatts", rc.intReading(r.Value)).
				add("PowerCapacityWatts", m.capacityWatts()).
				add("PowerMetrics", m.powerMetrics(rc)).
				add("Status", sensorStatus(r)))
			shown = append(shown, r)
		case s.Kind == model.KindVoltage:
			n := strconv.Itoa(len(volts))
			v := obj{}.
				add("@odata.id", self+"#/Voltages/"+n).
				add("MemberId", n).
				add("Name", s.Name)
			v = m.sensorNumber(v, s).
				add("ReadingVolts", rc.reading(r.Value)).
				addIf(s.Context != "", "PhysicalContext", s.Context)
			v = legacyThresholds(v, s.Thresholds, false)
			volts = append(volts, m.relatedItem(v, s).add("Status", sensorStatus(r)))
			shown = append(shown, r)
		}
	}
	for i := range m.psus {
		ps := &m.psus[i]
		n := strconv.Itoa(i)
		o := obj{}.
			add("@odata.id", self+"#/PowerSupplies/"+n).
			add("MemberId", n).
			add("Name", ps.spec.Name)
		if ps.input >= 0 {
			o = o.add("PowerInputWatts", rc.reading(rs[m.sensors[ps.input].idx].Value))
		}
		if ps.output >= 0 {
			out := rs[m.sensors[ps.output].idx].Value
			o = o.add("PowerOutputWatts", rc.reading(out)).
				add("LastPowerOutputWatts", rc.reading(out))
		}
		health := m.psuHealth(rs, ps)
		o = o.
			add("PowerCapacityWatts", ps.spec.RatedWatts).
			add("PowerSupplyType", "AC").
			addIf(ps.spec.Model != "", "Model", ps.spec.Model).
			add("SerialNumber", m.psuSerial(ps))
		if m.p.Redfish.RelatedItem {
			o = o.add("RelatedItem", []any{link(m.chassisPath)}).add("RelatedItem@odata.count", 1)
		}
		supplies = append(supplies, o.add("Status", obj{}.add("State", "Enabled").add("Health", health)))
		shown = append(shown, model.Reading{Health: health})
	}
	return obj{}.
		add("@odata.id", self).
		add("@odata.type", "#Power.v1_7_1.Power").
		add("@odata.etag", etagSlot{}).
		add("Id", "Power").
		add("Name", "Power").
		add("PowerControl", controls).
		add("PowerControl@odata.count", len(controls)).
		add("PowerSupplies", supplies).
		add("PowerSupplies@odata.count", len(supplies)).
		add("Voltages", volts).
		add("Voltages@odata.count", len(volts)).
		add("Status", status("Enabled", worstHealth(shown)))
}

func (m *modelBackend) sensorPath(si *sensorInfo) string {
	return m.chassisPath + "/Sensors/" + si.id
}

// excerpt is a SensorExcerpt: a copy of a Sensor's reading with a link to
// it, or without one when the sensor has no Sensor resource.
func (m *modelBackend) excerpt(rc *renderCtx, si *sensorInfo) obj {
	r := m.readings(rc)[si.idx]
	return m.dataSource(obj{}, si).add("Reading", rc.reading(shownValue(r)))
}

// dataSource adds an excerpt's DataSourceUri when the sensor has a Sensor
// resource to point to.
func (m *modelBackend) dataSource(o obj, si *sensorInfo) obj {
	if !si.member {
		return o
	}
	return o.add("DataSourceUri", m.sensorPath(si))
}

// healthOfKinds is the worst health of the shown sensors of some kinds.
func (m *modelBackend) healthOfKinds(rs []model.Reading, kinds ...string) string {
	var own []model.Reading
	for _, si := range m.sensors {
		for _, k := range kinds {
			if si.spec.Kind == k {
				own = append(own, rs[si.idx])
			}
		}
	}
	return worstHealth(own)
}

func (m *modelBackend) thermalSubsystem(rc *renderCtx) obj {
	self := m.chassisPath + "/ThermalSubsystem"
	health := m.healthOfKinds(m.readings(rc), model.KindTemperature, model.KindFan)
	return obj{}.
		add("@odata.id", self).
		add("@odata.type", "#ThermalSubsystem.v1_3_0.ThermalSubsystem").
		add("@odata.etag", etagSlot{}).
		add("Id", "ThermalSubsystem").
		add("Name", "Thermal Subsystem").
		add("Fans", link(self+"/Fans")).
		add("ThermalMetrics", link(self+"/ThermalMetrics")).
		add("Status", status("Enabled", health))
}

// thermalMetrics summarises temperatures by where they are measured. The
// summary picks sensors by their physical source, not the context the vendor
// labels them with: the BMC knows which of its sensors is the inlet even
// when it marks every one "Intake".
func (m *modelBackend) thermalMetrics(rc *renderCtx) obj {
	rs := m.readings(rc)
	summary := obj{}
	for _, want := range []struct{ source, key string }{
		{model.SourceIntake, "Intake"},
		{model.SourceExhaust, "Exhaust"},
		{model.SourceSystemBoard, "Internal"},
	} {
		for i := range m.sensors {
			si := &m.sensors[i]
			if si.spec.Source == want.source && rs[si.idx].State != "Absent" {
				summary = summary.add(want.key, m.excerpt(rc, si))
				break
			}
		}
	}
	var temps []obj
	for i := range m.sensors {
		si := &m.sensors[i]
		if si.spec.Kind != model.KindTemperature {
			continue
		}
		temps = append(temps, m.dataSource(obj{}, si).
			add("DeviceName", si.spec.Name).
			addIf(si.spec.Context != "", "PhysicalContext", si.spec.Context).
			add("Reading", rc.reading(rs[si.idx].Value)))
	}
	if temps == nil {
		temps = []obj{}
	}
	return obj{}.
		add("@odata.id", m.chassisPath+"/ThermalSubsystem/ThermalMetrics").
		add("@odata.type", "#ThermalMetrics.v1_3_0.ThermalMetrics").
		addIf(!rc.inline, "@odata.etag", etagSlot{}).
		add("Id", "ThermalMetrics").
		add("Name", "Chassis Thermal Metrics").
		add("TemperatureSummaryCelsius", summary).
		add("TemperatureReadingsCelsius", temps).
		add("TemperatureReadingsCelsius@odata.count", len(temps))
}

func (m *modelBackend) fanPath(f *fanInfo) string {
	return m.chassisPath + "/ThermalSubsystem/Fans/" + f.id
}

func (m *modelBackend) fanCollection(rc *renderCtx) obj {
	paths := make([]string, len(m.fans))
	for i := range m.fans {
		paths[i] = m.fanPath(&m.fans[i])
	}
	return m.collection(rc, m.chassisPath+"/ThermalSubsystem/Fans", "FanCollection", "Fan Collection", true, paths)
}

// fan is a modern Fan (Fan.v1_5_0): SpeedPercent carries the percentage,
// the RPM and a link to the Sensor it comes from.
func (m *modelBackend) fan(rc *renderCtx, f *fanInfo) obj {
	rs := m.readings(rc)
	primary := &m.sensors[f.primary]
	r := rs[primary.idx]
	source := primary
	if f.percent >= 0 {
		source = &m.sensors[f.percent]
	}
	return obj{}.
		add("@odata.id", m.fanPath(f)).
		add("@odata.type", "#Fan.v1_5_0.Fan").
		addIf(!rc.inline, "@odata.etag", etagSlot{}).
		add("Id", f.id).
		add("Name", primary.spec.Name).
		addIf(primary.spec.Context != "", "PhysicalContext", primary.spec.Context).
		add("SpeedPercent", m.dataSource(obj{}, source).
			add("Reading", rc.reading(r.Percent())).
			add("SpeedRPM", rc.reading(r.Value))).
		add("HotPluggable", true).
		add("Replaceable", true).
		add("Status", sensorStatus(r))
}

func (m *modelBackend) powerSubsystem(rc *renderCtx) obj {
	self := m.chassisPath + "/PowerSubsystem"
	health := m.healthOfKinds(m.readings(rc), model.KindPower, model.KindVoltage, model.KindCurrent)
	return obj{}.
		add("@odata.id", self).
		add("@odata.type", "#PowerSubsystem.v1_1_0.PowerSubsystem").
		add("@odata.etag", etagSlot{}).
		add("Id", "PowerSubsystem").
		add("Name", "Power Subsystem").
		add("CapacityWatts", m.capacityWatts()).
		add("PowerSupplies", link(self+"/PowerSupplies")).
		add("Status", status("Enabled", health))
}

func (m *modelBackend) psuPath(ps *psuInfo) string {
	return m.chassisPath + "/PowerSubsystem/PowerSupplies/" + ps.id
}

func (m *modelBackend) psuCollection(rc *renderCtx) obj {
	paths := make([]string, len(m.psus))
	for i := range m.psus {
		paths[i] = m.psuPath(&m.psus[i])
	}
	return m.collection(rc, m.chassisPath+"/PowerSubsystem/PowerSupplies", "PowerSupplyCollection", "Power Supply Collection", true, paths)
}

// psu is a modern PowerSupply (PowerSupply.v1_5_0); its readings live in
// the PowerSupplyMetrics behind its Metrics link. LineInputStatus says
// whether its input is there (LossOfInput under the PSUInputLost fault).
func (m *modelBackend) psu(rc *renderCtx, ps *psuInfo) obj {
	self := m.psuPath(ps)
	line := "Normal"
	if m.b.PSUInputLost(ps.index) {
		line = "LossOfInput"
	}
	return obj{}.
		add("@odata.id", self).
		add("@odata.type", "#PowerSupply.v1_5_0.PowerSupply").
		addIf(!rc.inline, "@odata.etag", etagSlot{}).
		add("Id", ps.id).
		add("Name", ps.spec.Name).
		addIf(ps.spec.Model != "", "Model", ps.spec.Model).
		add("SerialNumber", m.psuSerial(ps)).
		add("PowerCapacityWatts", ps.spec.RatedWatts).
		add("PowerSupplyType", "AC").
		add("LineInputStatus", line).
		add("HotPluggable", true).
		add("Metrics", link(self+"/Metrics")).
		add("Status", obj{}.add("State", "Enabled").add("Health", m.psuHealth(m.readings(rc), ps)))
}

func (m *modelBackend) psuMetrics(rc *renderCtx, ps *psuInfo) obj {
	o := obj{}.
		add("@odata.id", m.psuPath(ps)+"/Metrics").
		add("@odata.type", "#PowerSupplyMetrics.v1_1_0.PowerSupplyMetrics").
		addIf(!rc.inline, "@odata.etag", etagSlot{}).
		add("Id", "Metrics").
		add("Name", "Metrics for "+ps.spec.Name)
	if ps.input >= 0 {
		o = o.add("InputPowerWatts", m.excerpt(rc, &m.sensors[ps.input]))
	}
	if ps.output >= 0 {
		o = o.add("OutputPowerWatts", m.excerpt(rc, &m.sensors[ps.output]))
	}
	return o.add("Status", obj{}.add("State", "Enabled").add("Health", m.psuHealth(m.readings(rc), ps)))
}

func (m *modelBackend) sensorCollection(rc *renderCtx) obj {
	paths := make([]string, 0, len(m.sensors))
	for i := range m.sensors {
		if m.sensors[i].listed {
			paths = append(paths, m.sensorPath(&m.sensors[i]))
		}
	}
	return m.collection(rc, m.chassisPath+"/Sensors", "SensorCollection", "Sensors", true, paths)
}

// readingType maps a sensor to Sensor.ReadingType and the UCUM unit DMTF
// pairs with it. Fans reporting RPM (or nothing) are Rotational; fans
// reporting a percentage are Percent.
func readingType(s *model.SensorSpec) (typ, unit string) {
	switch s.Kind {
	case model.KindTemperature:
		return "Temperature", "Cel"
	case model.KindFan:
		if s.Unit == "Percent" {
			return "Percent", "%"
		}
		return "Rotational", "RPM"
	case model.KindPower:
		return "Power", "W"
	case model.KindVoltage:
		return "Voltage", "V"
	case model.KindCurrent:
		return "Current", "A"
	}
	return "", ""
}

// sensor is one Sensor resource (Sensor.v1_7_0).
func (m *modelBackend) sensor(rc *renderCtx, si *sensorInfo) obj {
	r := m.readings(rc)[si.idx]
	s := si.spec
	typ, unit := readingType(s)
	o := obj{}.
		add("@odata.id", m.sensorPath(si)).
		add("@odata.type", "#Sensor.v1_7_0.Sensor").
		addIf(!rc.inline, "@odata.etag", etagSlot{}).
		add("Id", si.id).
		add("Name", s.Name).
		add("Reading", rc.reading(shownValue(r))).
		add("ReadingType", typ).
		// A vendor that omits units in its data omits ReadingUnits.
		addIf(s.Unit != "", "ReadingUnits", unit).
		addIf(s.Kind == model.KindFan && s.Unit == "Percent", "SpeedRPM", rc.reading(r.Value)).
		addIf(s.Kind == model.KindVoltage, "VoltageType", voltageType(s)).
		addIf(s.Context != "", "PhysicalContext", s.Context)
	if len(s.Thresholds) > 0 {
		th := obj{}
		for _, n := range thresholdNames() {
			if v, ok := s.Thresholds[n.key]; ok {
				th = th.add(n.modern, obj{}.add("Reading", v))
			}
		}
		o = o.add("Thresholds", th)
	}
	return o.add("Status", sensorStatus(r))
}

// voltageType guesses AC for mains-level nominal voltages.
func voltageType(s *model.SensorSpec) string {
	if s.Nominal >= 90 {
		return "AC"
	}
	return "DC"
}
