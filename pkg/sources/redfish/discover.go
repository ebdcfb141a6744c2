package redfish

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/bmcstream/bmcstream/pkg/sources"
	v1 "github.com/bmcstream/bmcstream/proto/bmcstream/v1"
)

// rootDoc is the service root.
type rootDoc struct {
	UUID                      str
	Vendor                    str
	Product                   str
	RedfishVersion            str
	ProtocolFeaturesSupported struct {
		ExpandQuery struct {
			ExpandAll bool
			Levels    bool
			Links     bool
			NoLinks   bool
		}
	}
	Chassis  link
	Systems  link
	Managers link
	Links    struct {
		Sessions link
	}
}

// chassisDoc is a Chassis: identity and the links to its sensor resources.
type chassisDoc struct {
	ODataID            str `json:"@odata.id"`
	Manufacturer       str
	Model              str
	SerialNumber       str
	PowerState         str
	Status             status
	Thermal            link
	Power              link
	ThermalSubsystem   link
	PowerSubsystem     link
	Sensors            link
	EnvironmentMetrics link
}

// systemDoc is a ComputerSystem: the server's identity and state.
type systemDoc struct {
	Manufacturer str
	Model        str
	SerialNumber str
	UUID         str
	BiosVersion  str
	PowerState   str
	Status       status
}

// managerDoc is a Manager: the BMC itself.
type managerDoc struct {
	ManagerType     str
	Model           str
	FirmwareVersion str
}

// collectionDoc is any resource collection.
type collectionDoc struct {
	Members members
}

// leafKind is the kind of a sensor resource read every poll.
type leafKind int

const (
	leafThermal        leafKind = iota // legacy Thermal
	leafPower                          // legacy Power
	leafSensors                        // Sensors collection
	leafPSUMetrics                     // a PSU's metrics, when not all in Sensors
	leafEnvMetrics                     // a chassis' EnvironmentMetrics, when its power is not in Sensors
	leafFans                           // a ThermalSubsystem's Fans collection, when not all in Sensors
	leafThermalMetrics                 // a ThermalSubsystem's ThermalMetrics, when not all in Sensors
)

// excerpts reports whether the leaf's readings are excerpts (subsystems,
// metrics) rather than sensors of their own.
func (k leafKind) excerpts() bool { return k >= leafPSUMetrics }

// leaf is one resource a poll reads.
type leaf struct {
	kind leafKind
	uri  string
	// chassis is the chassis the resource belongs to.
	chassis string
	// query is a collection's $expand, when the service has it.
	query string
	// label and parent name the PSU of a leafPSUMetrics.
	label, parent string
	// chassisPowerKnown says a resource names the chassis power of this
	// Sensors collection (no guessing needed).
	chassisPowerKnown bool
	// dead is set when the plan's first poll found the resource not
	// served (404): the plan forgets it.
	dead bool
}

// discovery is what a poll reads and how it reads it, found once per
// session (and again when the service changes).
type discovery struct {
	leaves []leaf
	claims claims
	// cov lists the Sensors collections the plan reads: an excerpt of a
	// sensor under one of them is not read on its own.
	cov coverage
	// pruned is set once the first poll after discovery dropped the
	// excerpt leaves that only repeated readings of other leaves.
	pruned bool
	// schema is "legacy", "modern" or "both": the generations of sensor
	// resources the plan reads.
	schema     string
	systemURI  string
	managerURI string
}

// infoDocs are the documents the info map is made from.
type infoDocs struct {
	root    rootDoc
	chassis chassisDoc
	system  systemDoc
	manager managerDoc
}

// invalidate forgets discovery (and the cached documents, decoded under
// its claims): the next poll discovers the service again.
func (s *Source) invalidate() {
	s.disc = nil
	clear(s.cache)
}

// expandQuery is the $expand the service announced it supports for
// collection members: "." (members, not links) or "*" (everything), one
// level deep.
func (s *Source) expandQuery(root *rootDoc) string {
	if s.noExpand {
		return ""
	}
	eq := root.ProtocolFeaturesSupported.ExpandQuery
	var q string
	switch {
	case eq.NoLinks:
		q = "."
	case eq.ExpandAll:
		q = "*"
	default:
		return ""
	}
	if eq.Levels {
		q += "($levels=1)"
	}
	return "$expand=" + q
}

// expandFailed reports whether an error is a service refusing an $expand
// it announced (some BMCs announce it and answer 400 or 501).
func expandFailed(err error) bool {
	switch statusCode(err) {
	case http.StatusBadRequest, http.StatusNotImplemented, http.StatusMethodNotAllowed:
		return true
	}
	return false
}

// discover finds the chassis, system and manager, decides which sensor
// resources each poll reads, and learns from the modern resources which
// sensors measure PSUs, fans and the chassis.
// decodeDoc decodes a document discovery reads for what it says about the
// service (leniently, as decodeLenient). One that does not decode leaves v
// as it was: discovery goes on without it, as it does when a read fails,
// and the document is counted (Stats.MalformedDocuments) and logged.
func (s *Source) decodeDoc(what, uri string, b []byte, v any) {
	if err := decodeLenient(b, v); err != nil {
		s.stats.malformedDocs.Add(1)
		s.log.Debug("decode "+what, "host", s.host, "uri", uri, "err", err)
	}
}

func (s *Source) discover(p *poll) error {
	root, err := s.readRoot(p)
	if err != nil {
		return err
	}
	expand := s.expandQuery(root)
	chassis, err := s.readMembers(p, string(root.Chassis.ID), &expand)
	if err != nil {
		return err
	}
	// Systems and managers only feed the info map: one that cannot be
	// read costs its facts, not the readings.
	systems, err := s.readMembers(p, string(root.Systems.ID), &expand)
	if err != nil {
		if stopping(err) {
			return err
		}
		s.log.Debug("read systems", "host", s.host, "err", err)
	}
	managers, err := s.readMembers(p, string(root.Managers.ID), &expand)
	if err != nil {
		if stopping(err) {
			return err
		}
		s.log.Debug("read managers", "host", s.host, "err", err)
	}

	d := &discovery{claims: claims{}}
	info := infoDocs{root: *root}
	if len(systems) > 0 {
		d.systemURI = systems[0].uri
		s.decodeDoc("system", systems[0].uri, systems[0].body, &info.system)
	}
	for i, m := range managers {
		var doc managerDoc
		s.decodeDoc("manager", m.uri, m.body, &doc)
		if i == 0 || strings.EqualFold(string(doc.ManagerType), "BMC") {
			d.managerURI, info.manager = m.uri, doc
			if strings.EqualFold(string(doc.ManagerType), "BMC") {
				break
			}
		}
	}
	type planned struct {
		uri     string
		doc     chassisDoc
		legacy  bool // read Thermal and Power
		modern  bool // read Sensors and the subsystems
		sensors bool
	}
	var plans []planned
	for i, m := range chassis {
		var c chassisDoc
		if err := decodeLenient(m.body, &c); err != nil {
			s.log.Debug("skip undecodable chassis", "host", s.host, "chassis", m.uri, "err", err)
			continue
		}
		if i == 0 {
			info.chassis = c
		}
		pl := planned{uri: m.uri, doc: c}
		pl.legacy, pl.modern = s.generations(&c)
		pl.sensors = pl.modern && c.Sensors.ID != ""
		if pl.sensors {
			d.cov = append(d.cov, canonicalURI(string(c.Sensors.ID)))
		}
		plans = append(plans, pl)
	}
	schemas := map[string]bool{}
	for _, pl := range plans {
		if pl.legacy {
			schemas["legacy"] = true
			if pl.doc.Thermal.ID != "" {
				d.leaves = append(d.leaves, leaf{kind: leafThermal, uri: canonicalURI(string(pl.doc.Thermal.ID)), chassis: pl.uri})
			}
			if pl.doc.Power.ID != "" {
				d.leaves = append(d.leaves, leaf{kind: leafPower, uri: canonicalURI(string(pl.doc.Power.ID)), chassis: pl.uri})
			}
		}
		if pl.modern {
			schemas["modern"] = true
			// A legacy Power read beside the Sensors names the chassis
			// power: no Sensor is guessed to be it.
			if err := s.planModern(p, pl.uri, &pl.doc, pl.legacy && pl.doc.Power.ID != "", expand, d); err != nil {
				return err
			}
		}
		if !pl.legacy && !pl.modern {
			s.log.Debug("chassis has no sensor resources", "host", s.host, "chassis", pl.uri)
		}
	}
	switch {
	case schemas["legacy"] && schemas["modern"]:
		d.schema = "both"
	case schemas["legacy"]:
		d.schema = "legacy"
	case schemas["modern"]:
		d.schema = "modern"
	}
	clear(s.cache)
	s.disc, s.info, s.infoAt, s.infoDue = d, info, s.now(), nil
	s.stats.discoveries.Add(1)
	s.log.Debug("discovered redfish service", "host", s.host, "schema", d.schema, "chassis", len(chassis),
		"leaves", len(d.leaves), "claims", len(d.claims), "expand", expand)
	return nil
}

// generations decides which generations of sensor resources a chassis is
// read through (Options.Schema): automatically both where it offers both
// (merged reading by reading), else the one it offers; SchemaLegacy and
// SchemaModern the named one where the chassis offers it.
func (s *Source) generations(c *chassisDoc) (legacy, modern bool) {
	hasLegacy := c.Thermal.ID != "" || c.Power.ID != ""
	hasModern := c.Sensors.ID != "" || c.ThermalSubsystem.ID != "" || c.PowerSubsystem.ID != "" || c.EnvironmentMetrics.ID != ""
	switch s.opts.Schema {
	case SchemaLegacy:
		return hasLegacy, hasModern && !hasLegacy
	case SchemaModern:
		return hasLegacy && !hasModern, hasModern
	}
	return hasLegacy, hasModern
}

// psuDoc is a modern PowerSupply.
type psuDoc struct {
	Name    str
	Metrics link
}

// planModern plans a chassis' modern resources: its Sensors collection,
// read every poll, and its subsystems' excerpts. An excerpt whose
// DataSourceUri names a Sensor the plan reads is not read again: it only
// tells that Sensor's role (a PSU's input or output power, the chassis
// power, a fan), as a claim. A resource with excerpts of its own (no
// DataSourceUri, or one naming a sensor the plan does not read) is read
// every poll. The subsystems are read here, once; one that cannot be read
// costs its claims and readings, unless the failure ends the poll.
func (s *Source) planModern(p *poll, chassis string, c *chassisDoc, powerKnown bool, expand string, d *discovery) error {
	var lf *leaf
	if c.Sensors.ID != "" {
		lf = &leaf{kind: leafSensors, uri: canonicalURI(string(c.Sensors.ID)), chassis: chassis, query: expand, chassisPowerKnown: powerKnown}
	}
	var extra []leaf
	soft := func(what string, err error) error {
		if stopping(err) {
			return err
		}
		s.log.Debug("read "+what, "host", s.host, "chassis", chassis, "err", err)
		return nil
	}

	if uri := string(c.ThermalSubsystem.ID); uri != "" {
		sub, err := s.subsystem(p, uri)
		if err != nil {
			if err := soft("thermal subsystem", err); err != nil {
				return err
			}
		}
		if fl := sub["Fans"]; fl != "" {
			fans, err := s.readMembers(p, fl, &expand)
			if err != nil {
				if err := soft("fans", err); err != nil {
					return err
				}
			}
			own := false
			for _, m := range fans {
				var f fanDoc
				if decodeLenient(m.body, &f) != nil || f.SpeedPercent == nil {
					continue
				}
				if f.SpeedPercent.covered(d.cov) {
					d.claims[canonicalURI(string(f.SpeedPercent.DataSourceURI))] = claim{kind: v1.Kind_KIND_FAN, parent: string(f.Name)}
				} else if f.SpeedPercent.readable(d.cov) {
					own = true
				}
			}
			if own {
				extra = append(extra, leaf{kind: leafFans, uri: canonicalURI(fl), chassis: chassis, query: expand})
			}
		}
		if tl := sub["ThermalMetrics"]; tl != "" {
			resp, err := s.get(p, canonicalURI(tl), "", "")
			if err != nil {
				if err := soft("thermal metrics", err); err != nil {
					return err
				}
			} else {
				var tm struct{ TemperatureReadingsCelsius []excerpt }
				s.decodeDoc("thermal metrics", canonicalURI(tl), resp.body, &tm)
				for i := range tm.TemperatureReadingsCelsius {
					if tm.TemperatureReadingsCelsius[i].readable(d.cov) {
						extra = append(extra, leaf{kind: leafThermalMetrics, uri: canonicalURI(tl), chassis: chassis})
						break
					}
				}
			}
		}
	}

	if uri := string(c.PowerSubsystem.ID); uri != "" {
		sub, err := s.subsystem(p, uri)
		if err != nil {
			if err := soft("power subsystem", err); err != nil {
				return err
			}
		}
		var psus []rawMember
		if pl := sub["PowerSupplies"]; pl != "" {
			psus, err = s.readMembers(p, pl, &expand)
			if err != nil {
				if err := soft("power supplies", err); err != nil {
					return err
				}
			}
		}
		docs := make([]psuDoc, len(psus))
		names := make([]string, len(psus))
		pos := make([]int, len(psus))
		for i, m := range psus {
			s.decodeDoc("power supply", m.uri, m.body, &docs[i])
			names[i], pos[i] = string(docs[i].Name), i
		}
		labels := psuLabels(names, pos)
		for i, ps := range docs {
			if ps.Metrics.ID == "" {
				continue
			}
			muri := canonicalURI(string(ps.Metrics.ID))
			resp, err := s.get(p, muri, "", "")
			if err != nil {
				if err := soft("power supply metrics", err); err != nil {
					return err
				}
				continue
			}
			var m psuMetricsDoc
			if decodeLenient(resp.body, &m) != nil {
				continue
			}
			for _, q := range []struct {
				e          *excerpt
				sensorType string
			}{{m.InputPowerWatts, sensorTypePSUInput}, {m.OutputPowerWatts, sensorTypePSUOutput}} {
				if q.e.covered(d.cov) {
					d.claims[canonicalURI(string(q.e.DataSourceURI))] = claim{
						sensorType: q.sensorType, kind: v1.Kind_KIND_POWER, name: labels[i], parent: string(ps.Name),
					}
				}
			}
			for _, e := range []*excerpt{m.InputPowerWatts, m.OutputPowerWatts, m.InputVoltage, m.InputCurrentAmps} {
				if e.readable(d.cov) {
					extra = append(extra, leaf{kind: leafPSUMetrics, uri: muri, chassis: chassis, label: labels[i], parent: string(ps.Name)})
					break
				}
			}
		}
	}

	if uri := string(c.EnvironmentMetrics.ID); uri != "" {
		euri := canonicalURI(uri)
		resp, err := s.get(p, euri, "", "")
		if err != nil {
			if err := soft("environment metrics", err); err != nil {
				return err
			}
		} else {
			var m envMetricsDoc
			if decodeLenient(resp.body, &m) == nil && m.PowerWatts != nil {
				switch {
				case m.PowerWatts.covered(d.cov):
					d.claims[canonicalURI(string(m.PowerWatts.DataSourceURI))] = claim{sensorType: sensorTypeChassisPower, kind: v1.Kind_KIND_POWER}
					if lf != nil {
						lf.chassisPowerKnown = true
					}
				case m.PowerWatts.readable(d.cov):
					if lf != nil {
						lf.chassisPowerKnown = true
					}
				}
			}
			if m.PowerWatts.readable(d.cov) || m.EnergyJoules.readable(d.cov) || m.EnergykWh.readable(d.cov) {
				extra = append(extra, leaf{kind: leafEnvMetrics, uri: euri, chassis: chassis})
			}
		}
	}
	// The Sensors collection goes first: it is what matters, and a poll cut
	// short by its deadline should have it.
	if lf != nil {
		d.leaves = append(d.leaves, *lf)
	}
	d.leaves = append(d.leaves, extra...)
	return nil
}

// subsystem reads a ThermalSubsystem or PowerSubsystem and returns the
// URIs of its links (Fans, ThermalMetrics, PowerSupplies) by name.
func (s *Source) subsystem(p *poll, uri string) (map[string]string, error) {
	resp, err := s.get(p, canonicalURI(uri), "", "")
	if err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if err := decodeLenient(resp.body, &doc); err != nil {
		return nil, &sources.Error{Class: sources.ClassDecode, Err: fmt.Errorf("decode %s of %s: %w", uri, s.host, err)}
	}
	out := map[string]string{}
	for k, raw := range doc {
		var l link
		if decodeLenient(raw, &l) == nil && l.ID != "" {
			out[k] = string(l.ID)
		}
	}
	return out, nil
}

// rawMember is one member of a collection: its URI and its document.
type rawMember struct {
	uri  string
	body []byte
}

// readMembers reads a collection and its members: inline when the service
// expands it, one request each otherwise. A service refusing the $expand it
// announced is asked again without, and never with again.
func (s *Source) readMembers(p *poll, uri string, expand *string) ([]rawMember, error) {
	if uri == "" {
		return nil, nil
	}
	uri = canonicalURI(uri)
	resp, err := s.get(p, uri, *expand, "")
	if err != nil && *expand != "" && expandFailed(err) {
		s.log.Debug("service refused $expand; reading members one by one", "host", s.host, "uri", uri, "err", err)
		s.noExpand, *expand = true, ""
		resp, err = s.get(p, uri, "", "")
	}
	if err != nil {
		return nil, err
	}
	var coll collectionDoc
	if err := decodeLenient(resp.body, &coll); err != nil {
		return nil, &sources.Error{Class: sources.ClassDecode, Err: fmt.Errorf("decode %s of %s: %w", uri, s.host, err)}
	}
	out := make([]rawMember, 0, len(coll.Members.raw))
	for _, raw := range coll.Members.raw {
		var keys map[string]json.RawMessage
		if decodeLenient(raw, &keys) != nil {
			continue
		}
		var l link
		if decodeLenient(raw, &l) != nil || l.ID == "" {
			continue
		}
		muri := canonicalURI(string(l.ID))
		if len(keys) > 1 {
			out = append(out, rawMember{uri: muri, body: raw})
			continue
		}
		mresp, err := s.get(p, muri, "", "")
		if err != nil {
			if stopping(err) {
				return nil, err
			}
			// A member listed but not served (a stale link) costs
			// itself only.
			s.log.Debug("skip collection member", "host", s.host, "uri", muri, "err", err)
			continue
		}
		out = append(out, rawMember{uri: muri, body: mresp.body})
	}
	return out, nil
}

// refreshInfo reads one info document again when due: the system and the
// manager in turn, every InfoInterval. A failed read stays due.
func (s *Source) refreshInfo(p *poll) error {
	d := s.disc
	if d == nil {
		return nil
	}
	if len(s.infoDue) == 0 && s.now().Sub(s.infoAt) >= s.opts.InfoInterval {
		s.infoAt = s.now()
		for _, u := range []string{d.systemURI, d.managerURI} {
			if u != "" {
				s.infoDue = append(s.infoDue, u)
			}
		}
	}
	if len(s.infoDue) == 0 {
		return nil
	}
	uri := s.infoDue[0]
	var err error
	if uri == d.systemURI {
		_, err = s.getDoc(p, uri, "", func(b []byte) (docResult, error) {
			var doc systemDoc
			if err := decodeLenient(b, &doc); err != nil {
				return docResult{}, err
			}
			s.info.system = doc
			return docResult{}, nil
		})
	} else {
		_, err = s.getDoc(p, uri, "", func(b []byte) (docResult, error) {
			var doc managerDoc
			if err := decodeLenient(b, &doc); err != nil {
				return docResult{}, err
			}
			s.info.manager = doc
			return docResult{}, nil
		})
	}
	if err != nil {
		return err
	}
	s.infoDue = s.infoDue[1:]
	return nil
}

// fillInfo sets dst.Info from the info documents: the system's facts first,
// the chassis' and the service root's where the system is silent.
func (s *Source) fillInfo(dst *v1.Snapshot) {
	if dst.Info == nil {
		dst.Info = make(map[string]string, 12)
	} else {
		clear(dst.Info)
	}
	in := &s.info
	set := func(key string, vals ...str) {
		for _, v := range vals {
			if v != "" {
				dst.Info[key] = string(v)
				return
			}
		}
	}
	set("vendor", in.system.Manufacturer, in.chassis.Manufacturer, in.root.Vendor)
	set("model", in.system.Model, in.chassis.Model, in.root.Product)
	set("serial", in.system.SerialNumber, in.chassis.SerialNumber)
	set("firmware", in.manager.FirmwareVersion)
	set("bios_version", in.system.BiosVersion)
	set("power_state", in.system.PowerState, in.chassis.PowerState)
	set("health", in.chassis.Status.Health, in.system.Status.Health)
	set("manager_model", in.manager.Model)
	set("uuid", in.system.UUID, in.root.UUID)
	set("redfish_version", in.root.RedfishVersion)
	if s.disc != nil {
		set("schema", str(s.disc.schema))
	}
}
