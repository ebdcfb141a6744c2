package inventory

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/bmcstream/bmcstream/internal/yamlx"
	"github.com/prometheus/common/model"
)

// ParseCSV reads an inventory from CSV, as DCIM tools export it. The first
// row names the columns: id and address are required; protocol, prefer,
// credentials, interval, redfish_port, ipmi_port, redfish_scheme,
// redfish_schema, ca_file and insecure_skip_verify are optional; every other column is a label
// (site, room, row, rack, position, or your own), empty cells omitted.
// Errors name the line and column.
func ParseCSV(r io.Reader) (*Inventory, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("line 1: no header row (id,address,...)")
	}
	if err != nil {
		// A csv.ParseError names its line.
		return nil, fmt.Errorf("read csv header: %w", err)
	}
	cols := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.ToLower(h))
		if h == "" {
			return nil, fmt.Errorf("line 1: column %d has no name", i+1)
		}
		if _, dup := cols[h]; dup {
			return nil, fmt.Errorf("line 1: column %q appears twice", h)
		}
		cols[h] = i
		header[i] = h
	}
	for _, need := range []string{"id", "address"} {
		if _, ok := cols[need]; !ok {
			return nil, fmt.Errorf("line 1: no %q column", need)
		}
	}
	inv := &Inventory{byID: map[string]int{}}
	var errs []error
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A csv.ParseError names its own line; FieldPos is only
			// valid after a successful Read.
			errs = append(errs, err)
			var pe *csv.ParseError
			if !errors.As(err, &pe) || pe.Err != csv.ErrFieldCount {
				break
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		e := BMC{Line: line}
		var rowErrs []error
		for i, v := range rec {
			v = strings.TrimSpace(v)
			name := header[i]
			var err error
			switch name {
			case "id":
				e.ID = v
			case "address":
				e.Address = v
			case "protocol":
				e.Protocol = Protocol(strings.ToLower(v))
			case "prefer":
				e.Prefer = Protocol(strings.ToLower(v))
			case "credentials":
				e.Credentials = v
			case "interval":
				if v != "" {
					var d model.Duration
					d, err = model.ParseDuration(v)
					e.Interval = d
				}
			case "redfish_port":
				e.RedfishPort, err = atoiEmpty(v)
			case "ipmi_port":
				e.IPMIPort, err = atoiEmpty(v)
			case "redfish_scheme":
				e.RedfishScheme = strings.ToLower(v)
			case "redfish_schema":
				e.RedfishSchema = strings.ToLower(v)
			case "ca_file":
				e.CAFile = v
			case "insecure_skip_verify":
				if v != "" {
					e.InsecureSkipVerify, err = strconv.ParseBool(v)
				}
			default:
				if v != "" {
					if e.Labels == nil {
						e.Labels = map[string]string{}
					}
					e.Labels[name] = v
				}
			}
			if err != nil {
				rowErrs = append(rowErrs, fmt.Errorf("column %s: %q: %w", name, v, err))
			}
		}
		applyDefaults(&e, Defaults{})
		if err := e.Validate(); err != nil {
			rowErrs = append(rowErrs, err)
		}
		if len(rowErrs) > 0 {
			for _, msg := range yamlx.Problems(errors.Join(rowErrs...)) {
				errs = append(errs, fmt.Errorf("line %d: %s", line, msg))
			}
			continue
		}
		if j, dup := inv.byID[e.ID]; dup {
			errs = append(errs, fmt.Errorf("line %d: id %q already used at line %d", line, e.ID, inv.bmcs[j].Line))
			continue
		}
		inv.byID[e.ID] = len(inv.bmcs)
		inv.bmcs = append(inv.bmcs, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return inv, nil
}

func atoiEmpty(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	return strconv.Atoi(v)
}
