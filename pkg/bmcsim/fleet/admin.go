package fleet

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
)

// FaultRequest applies faults to part of the fleet. Exactly one selector
// is used: IDs, else Fraction (of all members, or of one Personality),
// chosen deterministically by Seed.
type FaultRequest struct {
	IDs         []string     `json:"ids,omitempty"`
	Fraction    float64      `json:"fraction,omitempty"`
	Personality string       `json:"personality,omitempty"`
	Seed        uint64       `json:"seed,omitempty"`
	Faults      model.Faults `json:"faults"`
}

// Apply sets the request's faults on the members it selects and returns
// their ids.
func (f *Fleet) Apply(req FaultRequest) ([]string, error) {
	var picked []*Member
	switch {
	case len(req.IDs) > 0:
		for _, id := range req.IDs {
			m, ok := f.byID[id]
			if !ok {
				return nil, fmt.Errorf("no member %q", id)
			}
			picked = append(picked, m)
		}
	case req.Fraction > 0 && req.Fraction <= 1:
		var pool []*Member
		for _, m := range f.Members {
			if req.Personality == "" || m.BMC.Personality.Name == req.Personality {
				pool = append(pool, m)
			}
		}
		rng := rand.New(rand.NewPCG(req.Seed, 0x5eed))
		rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
		n := int(float64(len(pool))*req.Fraction + 0.5)
		picked = pool[:n]
	default:
		return nil, fmt.Errorf("select members with ids or a fraction in (0, 1]")
	}
	ids := make([]string, len(picked))
	for i, m := range picked {
		m.BMC.SetFaults(req.Faults)
		ids[i] = m.BMC.ID
	}
	sort.Strings(ids)
	return ids, nil
}

// ClearFaults makes every member healthy again.
func (f *Fleet) ClearFaults() {
	for _, m := range f.Members {
		m.BMC.SetFaults(model.Faults{})
	}
}

// memberView is what the admin API shows of a member.
type memberView struct {
	ID          string       `json:"id"`
	Personality string       `json:"personality"`
	Redfish     string       `json:"redfish,omitempty"`
	IPMI        string       `json:"ipmi,omitempty"`
	Rack        string       `json:"rack"`
	Faults      model.Faults `json:"faults"`
}

func (f *Fleet) view(m *Member) memberView {
	v := memberView{ID: m.BMC.ID, Personality: m.BMC.Personality.Name, Rack: m.BMC.Rack, Faults: m.BMC.Faults()}
	if f.cfg.Protocols != "ipmi" {
		v.Redfish = m.RedfishURL(f.cfg.TLS)
	}
	if f.cfg.Protocols != "redfish" {
		v.IPMI = m.IPMIAddr()
	}
	return v
}

// AdminHandler serves the admin API. Bind it to loopback only: it changes
// the fleet's behaviour and reveals nothing secret, but is unauthenticated.
//
//	GET    /fleet                  members, addresses and faults
//	GET    /bmcs/{id}/faults       one member's faults
//	PUT    /bmcs/{id}/faults       replace one member's faults (JSON model.Faults)
//	POST   /faults                 apply a FaultRequest, answers the ids
//	DELETE /faults                 clear every fault
//	GET    /traffic                Redfish connections, TLS handshakes (full, resumed), IPMI datagrams received
func (f *Fleet) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fleet", func(w http.ResponseWriter, _ *http.Request) {
		out := make([]memberView, len(f.Members))
		for i, m := range f.Members {
			out[i] = f.view(m)
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /bmcs/{id}/faults", func(w http.ResponseWriter, r *http.Request) {
		m, ok := f.byID[r.PathValue("id")]
		if !ok {
			http.Error(w, "no such bmc", http.StatusNotFound)
			return
		}
		writeJSON(w, http.StatusOK, m.BMC.Faults())
	})
	mux.HandleFunc("PUT /bmcs/{id}/faults", func(w http.ResponseWriter, r *http.Request) {
		m, ok := f.byID[r.PathValue("id")]
		if !ok {
			http.Error(w, "no such bmc", http.StatusNotFound)
			return
		}
		var faults model.Faults
		if err := decodeStrict(r.Body, &faults); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		m.BMC.SetFaults(faults)
		writeJSON(w, http.StatusOK, faults)
	})
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		var req FaultRequest
		if err := decodeStrict(r.Body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ids, err := f.Apply(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ids": ids})
	})
	mux.HandleFunc("GET /traffic", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, f.Traffic())
	})
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, _ *http.Request) {
		f.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode request: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; a simulator's admin API has no one to tell
}

// ParseFaultSpec reads the --fault flag form "fraction=0.1,black_hole" or
// "ids=bmc-1;bmc-2,http_status=503,retry_after_seconds=5": comma-separated
// key=value pairs (bare keys are booleans set to true) using the JSON
// names of model.Faults plus the selectors ids, fraction, personality, seed.
func ParseFaultSpec(spec string) (FaultRequest, error) {
	var req FaultRequest
	obj := map[string]any{}
	for _, kv := range strings.Split(spec, ",") {
		k, v, hasValue := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "":
			continue
		case "ids":
			req.IDs = strings.Split(v, ";")
			continue
		case "fraction":
			if _, err := fmt.Sscanf(v, "%g", &req.Fraction); err != nil {
				return req, fmt.Errorf("fault %q: fraction: %w", spec, err)
			}
			continue
		case "personality":
			req.Personality = v
			continue
		case "seed":
			if _, err := fmt.Sscanf(v, "%d", &req.Seed); err != nil {
				return req, fmt.Errorf("fault %q: seed: %w", spec, err)
			}
			continue
		}
		if !hasValue {
			obj[k] = true
			continue
		}
		var num float64
		if _, err := fmt.Sscanf(v, "%g", &num); err == nil {
			obj[k] = num
		} else if v == "true" || v == "false" {
			obj[k] = v == "true"
		} else {
			return req, fmt.Errorf("fault %q: %s: %q is neither a number nor a boolean", spec, k, v)
		}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return req, err
	}
	if err := decodeStrict(strings.NewReader(string(b)), &req.Faults); err != nil {
		return req, fmt.Errorf("fault %q: %w", spec, err)
	}
	return req, nil
}
