package corpus

import (
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// rawReading is one numeric reading found in a capture's JSON by walking
// the documents, independently of the Redfish source.
type rawReading struct {
	// ID is the reading's id as docs/metrics.md defines Reading.Id: the
	// member's @odata.id, or the document URI plus a JSON pointer.
	ID string
	// Alt are other ids the same physical reading is known by: the
	// member's own id where the reading is its only one, the Sensor an
	// excerpt's DataSourceUri points at.
	Alt   []string
	Name  string
	State string
	// Numeric says the value is a JSON number; Value is it. Otherwise the
	// reading is listed with null, a string or no value at all, and Raw
	// says which.
	Numeric bool
	Value   float64
	Raw     string
	// Where says which resource and property it was read from, for
	// failure messages.
	Where string
}

// enabled reports whether the reading's Status.State says the sensor is
// working (no state at all counts as working).
func (r rawReading) enabled() bool { return r.State == "" || strings.EqualFold(r.State, "Enabled") }

// captureDocs reads every index.json of a capture, keyed by URI. Documents
// that are not valid JSON are left out (the source reports them as
// errors).
func captureDocs(dir string) (map[string]map[string]any, error) {
	root := dir
	for _, cand := range []string{filepath.Join(dir, "redfish", "v1"), filepath.Join(dir, "v1"), dir} {
		if _, err := os.Stat(filepath.Join(cand, "index.json")); err == nil {
			root = cand
			break
		}
	}
	docs := map[string]map[string]any{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "index.json" {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(p))
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var doc map[string]any
		if json.Unmarshal(b, &doc) != nil {
			return nil
		}
		docs[path.Clean("/redfish/v1/"+filepath.ToSlash(rel))] = doc
		return nil
	})
	return docs, err
}

// rawReadings walks every document of a capture, and every object nested
// in them (members inlined by $expand included), for the readings a poller
// is expected to read, keyed by ID.
func rawReadings(docs map[string]map[string]any) map[string]rawReading {
	out := map[string]rawReading{}
	for uri, doc := range docs {
		walkObjects(doc, uri, true, out)
	}
	return out
}

// walkObjects visits o and every object beneath it.
func walkObjects(o map[string]any, docURI string, top bool, out map[string]rawReading) {
	uri := docURI
	if id, ok := o["@odata.id"].(string); ok && id != "" && !strings.Contains(id, "#") {
		uri = canonicalURI(id)
	}
	switch resourceType(o, docURI, top) {
	case "Thermal":
		legacyArray(o, uri, "Temperatures", []string{"ReadingCelsius", "CurrentReading"}, out)
		legacyArray(o, uri, "Fans", []string{"Reading", "CurrentReading"}, out)
	case "Power":
		legacyArray(o, uri, "Voltages", []string{"ReadingVolts"}, out)
		legacyArray(o, uri, "PowerSupplies", []string{"PowerInputWatts", "PowerOutputWatts", "LastPowerOutputWatts"}, out)
		legacyArray(o, uri, "PowerControl", []string{"PowerConsumedWatts"}, out)
	case "Sensor":
		r := rawReading{ID: uri, Name: str(o["Name"]), State: state(o), Where: uri + " Reading"}
		r.setValue(o, "Reading")
		add(out, r)
	case "ThermalMetrics":
		if arr, ok := o["TemperatureReadingsCelsius"].([]any); ok {
			for i, e := range arr {
				excerpt(e, uri+"#/TemperatureReadingsCelsius/"+strconv.Itoa(i), state(o), out)
			}
		}
	case "Fan":
		excerpt(o["SpeedPercent"], uri+"#/SpeedPercent", state(o), out)
	case "PowerSupplyMetrics", "EnvironmentMetrics":
		for _, k := range sortedKeys(o) {
			switch v := o[k].(type) {
			case map[string]any:
				excerpt(v, uri+"#/"+k, state(o), out)
			case []any:
				for i, e := range v {
					excerpt(e, uri+"#/"+k+"/"+strconv.Itoa(i), state(o), out)
				}
			}
		}
	}
	for _, k := range sortedKeys(o) {
		switch v := o[k].(type) {
		case map[string]any:
			walkObjects(v, docURI, false, out)
		case []any:
			for _, e := range v {
				if m, ok := e.(map[string]any); ok {
					walkObjects(m, docURI, false, out)
				}
			}
		}
	}
}

// resourceType is the Redfish resource an object is ("Thermal" for
// #Thermal.v1_7_0.Thermal and iLO 4's #Thermal.1.1.0.Thermal), or, for a
// document with no @odata.type, what its URI says.
func resourceType(o map[string]any, uri string, top bool) string {
	if _, ok := o["error"]; ok && top && o["@odata.id"] == nil {
		// A Redfish error response captured in place of the resource
		// (the BMC answered its URI with an error): no resource, no
		// reading.
		return ""
	}
	if t, ok := o["@odata.type"].(string); ok && t != "" {
		t = strings.TrimPrefix(t, "#")
		ns, _, _ := strings.Cut(t, ".")
		if typ := t[strings.LastIndexByte(t, '.')+1:]; typ == ns {
			return typ
		}
		return ""
	}
	if !top {
		return ""
	}
	parts := strings.Split(uri, "/")
	last := parts[len(parts)-1]
	switch {
	case last == "Thermal" || last == "Power" || last == "ThermalMetrics" || last == "EnvironmentMetrics":
		return last
	case last == "Metrics" && len(parts) > 2 && parts[len(parts)-3] == "PowerSupplies":
		return "PowerSupplyMetrics"
	case len(parts) > 1 && parts[len(parts)-2] == "Sensors":
		return "Sensor"
	case len(parts) > 1 && parts[len(parts)-2] == "Fans" && strings.Contains(uri, "/ThermalSubsystem/"):
		return "Fan"
	}
	return ""
}

// legacyArray adds the readings of a legacy Thermal or Power array. A
// member with one reading property is identified by its own id; one with
// several (a PSU's input and output) by its id plus the property, as a
// JSON pointer. Every property present is a listed reading, null or not;
// a temperature, fan or voltage member is one even with none.
func legacyArray(o map[string]any, uri, array string, props []string, out map[string]rawReading) {
	arr, ok := o[array].([]any)
	if !ok {
		return
	}
	oneEach := array == "Temperatures" || array == "Fans" || array == "Voltages"
	for i, e := range arr {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		id := uri + "#/" + array + "/" + strconv.Itoa(i)
		if oid, ok := m["@odata.id"].(string); ok && oid != "" {
			id = canonicalURI(oid)
		}
		name := str(m["Name"])
		if name == "" {
			name = str(m["FanName"])
		}
		var found []string
		for _, p := range props {
			if _, ok := m[p]; ok {
				found = append(found, p)
			}
		}
		if oneEach && len(found) > 1 {
			// iLO 4 gives the same reading twice (ReadingCelsius and
			// CurrentReading): one reading, the first that is a number.
			for _, p := range found {
				if _, ok := number(m[p]); ok {
					found = []string{p}
					break
				}
			}
			found = found[:1]
		}
		where := uri + " " + array + "[" + strconv.Itoa(i) + "]."
		if oneEach && len(found) == 0 {
			add(out, rawReading{ID: id, Name: name, State: state(m), Raw: "missing", Where: where + props[0]})
			continue
		}
		for _, p := range found {
			r := rawReading{Name: name, State: state(m), Where: where + p}
			r.setValue(m, p)
			if len(found) == 1 {
				r.ID = id
				r.Alt = []string{id + "/" + p}
			} else {
				r.ID = id + "/" + p
			}
			if p == "LastPowerOutputWatts" {
				// The PSU's output power as last measured: the same
				// quantity as PowerOutputWatts, which a PSU listing
				// both gives as one reading.
				r.Alt = append(r.Alt, id+"/PowerOutputWatts")
			}
			add(out, r)
		}
	}
}

// excerpt adds a SensorExcerpt's reading ({"Reading": n, "DataSourceUri":
// ...}); the Sensor it names is the same reading.
func excerpt(v any, id, st string, out map[string]rawReading) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	if _, ok := m["SetPoint"]; ok {
		return // a Control excerpt (PowerLimitWatts): a limit, not a sensor
	}
	if _, ok := m["Reading"]; !ok {
		return
	}
	r := rawReading{ID: id, State: st, Where: id}
	r.setValue(m, "Reading")
	if ds, ok := m["DataSourceUri"].(string); ok && ds != "" {
		r.Alt = []string{canonicalURI(ds)}
		r.Name = lastSegment(r.Alt[0])
	}
	add(out, r)
}

// setValue records the value of property p of m.
func (r *rawReading) setValue(m map[string]any, p string) {
	v, present := m[p]
	switch v := v.(type) {
	case float64:
		r.Numeric, r.Value = true, v
	case nil:
		r.Raw = "null"
		if !present {
			r.Raw = "missing"
		}
	default:
		b, _ := json.Marshal(v)
		r.Raw = string(b)
	}
}

// value renders the value for messages.
func (r rawReading) value() string {
	if r.Numeric {
		return strconv.FormatFloat(r.Value, 'g', -1, 64)
	}
	return r.Raw
}

func add(out map[string]rawReading, r rawReading) {
	if _, ok := out[r.ID]; !ok {
		out[r.ID] = r
	}
}

func number(v any) (float64, bool) {
	f, ok := v.(float64)
	return f, ok
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func state(o map[string]any) string {
	st, _ := o["Status"].(map[string]any)
	return str(st["State"])
}

// canonicalURI is a URI's path without scheme, host, query or trailing
// slash, as docs/metrics.md identifies readings (written here, like the
// whole walk, independently of the source's own).
func canonicalURI(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			u = rest[j:]
		} else {
			u = "/"
		}
	}
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	if len(u) > 1 {
		u = strings.TrimRight(u, "/")
	}
	return u
}

func lastSegment(u string) string {
	u, _, _ = strings.Cut(u, "#")
	return u[strings.LastIndexByte(u, '/')+1:]
}
