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
	leafThermal    leafKind = iota // legacy Thermal
	leafPower                      // legacy Power
	leafSensors                    // Sensors collection
	leafPSUMetrics                 // a PSU's metrics, when not in Sensors
	leafEnvMetrics                 // a chassis' EnvironmentMetrics, when its power is not in Sensors
)

// leaf is one resource a poll reads.
type leaf struct {
	kind leafKind
	uri  string
	// query is the Sensors collection's $expand, when the service has it.
	query string
	// label and parent name the PSU of a leafPSUMetrics.
	label, parent string
	// chassisPowerKnown says a resource names the chassis power of this
	// Sensors collection (no guessing needed).
	chassisPowerKnown bool
}

// discovery is what a poll reads and how it reads it, found once per
// session (and again when the service changes).
type discovery struct {
	leaves []leaf
	claims claims
	// schema is "legacy", "modern" or "mixed" (chassis read differently).
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
		_ = decodeLenient(systems[0].body, &info.system)
	}
	for i, m := range managers {
		var doc managerDoc
		_ = decodeLenient(m.body, &doc)
		if i == 0 || strings.EqualFold(string(doc.ManagerType), "BMC") {
			d.managerURI, info.manager = m.uri, doc
			if strings.EqualFold(string(doc.ManagerType), "BMC") {
				break
			}
		}
	}
	schemas := map[string]bool{}
	for i, m := range chassis {
		var c chassisDoc
		if err := decodeLenient(m.body, &c); err != nil {
			s.log.Debug("skip undecodable chassis", "host", s.host, "chassis", m.uri, "err", err)
			continue
		}
		if i == 0 {
			info.chassis = c
		}
		schema, err := s.plan(p, m.uri, &c, expand, d)
		if err != nil {
			return err
		}
		if schema != "" {
			schemas[schema] = true
		}
	}
	switch {
	case len(schemas) > 1:
		d.schema = "mixed"
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

// plan adds a chassis' sensor resources to d and returns the schema
// generation read ("" when the chassis has no sensors).
func (s *Source) plan(p *poll, uri string, c *chassisDoc, expand string, d *discovery) (string, error) {
	hasLegacy := c.Thermal.ID != "" || c.Power.ID != ""
	hasSensors := c.Sensors.ID != ""
	var modern bool
	switch s.opts.Schema {
	case SchemaModern:
		modern = hasSensors
	case SchemaLegacy:
		modern = hasSensors && !hasLegacy
	default:
		modern = hasSensors && (expand != "" || !hasLegacy)
	}
	switch {
	case modern:
		return "modern", s.planModern(p, c, expand, d)
	case hasLegacy:
		if c.Thermal.ID != "" {
			d.leaves = append(d.leaves, leaf{kind: leafThermal, uri: canonicalURI(string(c.Thermal.ID))})
		}
		if c.Power.ID != "" {
			d.leaves = append(d.leaves, leaf{kind: leafPower, uri: canonicalURI(string(c.Power.ID))})
		}
		return "legacy", nil
	}
	s.log.Debug("chassis has no sensor resources", "host", s.host, "chassis", uri)
	return "", nil
}

// fanDoc is a modern Fan.
type fanDoc struct {
	Name         str
	SpeedPercent *excerpt
}

// psuDoc is a modern PowerSupply.
type psuDoc struct {
	Name    str
	Metrics link
}

// planModern reads a chassis' Sensors collection every poll, after learning
// which of its sensors fans, PSUs and the chassis point at. Those
// resources are read here, once; one that cannot be read costs its claims
// (the sensors still come, with their own ReadingType), unless the failure
// ends the poll.
func (s *Source) planModern(p *poll, c *chassisDoc, expand string, d *discovery) error {
	lf := leaf{kind: leafSensors, uri: canonicalURI(string(c.Sensors.ID)), query: expand}
	soft := func(what string, err error) error {
		if stopping(err) {
			return err
		}
		s.log.Debug("read "+what+" for sensor claims", "host", s.host, "err", err)
		return nil
	}

	if uri := string(c.ThermalSubsystem.ID); uri != "" {
		fans, err := s.subCollection(p, uri, "Fans", &expand)
		if err != nil {
			if err := soft("fans", err); err != nil {
				return err
			}
		}
		for _, m := range fans {
			var f fanDoc
			if decodeLenient(m.body, &f) != nil || f.SpeedPercent == nil || f.SpeedPercent.DataSourceURI == "" {
				continue
			}
			d.claims[canonicalURI(string(f.SpeedPercent.DataSourceURI))] = claim{kind: v1.Kind_KIND_FAN, parent: string(f.Name)}
		}
	}

	if uri := string(c.PowerSubsystem.ID); uri != "" {
		psus, err := s.subCollection(p, uri, "PowerSupplies", &expand)
		if err != nil {
			if err := soft("power supplies", err); err != nil {
				return err
			}
		}
		docs := make([]psuDoc, len(psus))
		names := make([]string, len(psus))
		pos := make([]int, len(psus))
		for i, m := range psus {
			_ = decodeLenient(m.body, &docs[i])
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
			viaMetrics := false
			for _, q := range []struct {
				e          *excerpt
				sensorType string
			}{{m.InputPowerWatts, sensorTypePSUInput}, {m.OutputPowerWatts, sensorTypePSUOutput}} {
				switch {
				case q.e == nil:
				case q.e.DataSourceURI != "":
					d.claims[canonicalURI(string(q.e.DataSourceURI))] = claim{
						sensorType: q.sensorType, kind: v1.Kind_KIND_POWER, name: labels[i], parent: string(ps.Name),
					}
				case q.e.Reading.state != numAbsent:
					viaMetrics = true
				}
			}
			if viaMetrics {
				d.leaves = append(d.leaves, leaf{kind: leafPSUMetrics, uri: muri, label: labels[i], parent: string(ps.Name)})
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
				case m.PowerWatts.DataSourceURI != "":
					d.claims[canonicalURI(string(m.PowerWatts.DataSourceURI))] = claim{sensorType: sensorTypeChassisPower, kind: v1.Kind_KIND_POWER}
					lf.chassisPowerKnown = true
				case m.PowerWatts.Reading.state != numAbsent:
					d.leaves = append(d.leaves, leaf{kind: leafEnvMetrics, uri: euri})
					lf.chassisPowerKnown = true
				}
			}
		}
	}
	// The Sensors collection goes first: it is what matters, and a poll cut
	// short by its deadline should have it.
	d.leaves = append([]leaf{lf}, d.leaves...)
	return nil
}

// subCollection reads the subsystem at uri and the members of its
// collection named prop (ThermalSubsystem's Fans, PowerSubsystem's
// PowerSupplies).
func (s *Source) subCollection(p *poll, uri, prop string, expand *string) ([]rawMember, error) {
	resp, err := s.get(p, canonicalURI(uri), "", "")
	if err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if err := decodeLenient(resp.body, &doc); err != nil {
		return nil, &sources.Error{Class: sources.ClassDecode, Err: fmt.Errorf("decode %s of %s: %w", uri, s.host, err)}
	}
	var l link
	if raw, ok := doc[prop]; !ok || decodeLenient(raw, &l) != nil || l.ID == "" {
		return nil, nil
	}
	return s.readMembers(p, string(l.ID), expand)
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
	set("health", in.system.Status.HealthRollup, in.system.Status.Health)
	set("manager_model", in.manager.Model)
	set("uuid", in.system.UUID, in.root.UUID)
	set("redfish_version", in.root.RedfishVersion)
	if s.disc != nil {
		set("schema", str(s.disc.schema))
	}
}
