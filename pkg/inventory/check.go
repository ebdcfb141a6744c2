package inventory

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/bmcstream/bmcstream/internal/yamlx"
)

// CheckOptions say what CheckFile checks beyond what Load does.
type CheckOptions struct {
	// Credentials, when not nil, must resolve every entry's credentials
	// reference (Credentials.Check).
	Credentials *Credentials
	// CAFiles makes every Redfish entry's ca_file hold a certificate;
	// DefaultCAFile (the poller's redfish.ca_file, checked with its
	// configuration) is skipped.
	CAFiles       bool
	DefaultCAFile string
}

// CheckFile loads an inventory file as Load does and checks, for each
// entry, what a poller needs to poll it and Parse leaves alone (an entry
// that fails these is polled as down, error class config, rather than
// failing its file): the address (CheckAddress) and, as opts say, the
// credentials reference and the CA file. Every problem is reported, on
// the line of its key (YAML) or its row (CSV), never with a secret.
func CheckFile(path string, opts CheckOptions) error {
	inv, err := Load(path)
	if err != nil {
		return err
	}
	return CheckEntries(path, inv, opts)
}

// CheckEntries is CheckFile for an inventory already loaded from path, so
// that a caller that needs the inventory too reads and parses it once.
func CheckEntries(path string, inv *Inventory, opts CheckOptions) error {
	csv := strings.HasSuffix(strings.ToLower(path), ".csv")
	var errs []error
	for i, b := range inv.All() {
		var es []error
		if err := CheckAddress(b.Address); err != nil {
			es = append(es, err)
		}
		if opts.Credentials != nil {
			if err := opts.Credentials.Check(b.Credentials); err != nil {
				es = append(es, err)
			}
		}
		if opts.CAFiles && b.Protocol != IPMI && b.CAFile != "" && b.CAFile != opts.DefaultCAFile {
			if err := checkCAFile(b.CAFile); err != nil {
				es = append(es, fmt.Errorf("ca_file: %w", err))
			}
		}
		if len(es) == 0 {
			continue
		}
		if csv {
			for _, p := range yamlx.Problems(errors.Join(es...)) {
				errs = append(errs, fmt.Errorf("line %d: %s", b.Line, p))
			}
			continue
		}
		errs = append(errs, fmt.Errorf("bmcs[%d]: %w", i, errors.Join(es...)))
	}
	if len(errs) == 0 {
		return nil
	}
	err := errors.Join(errs...)
	if !csv {
		if doc, rerr := os.ReadFile(path); rerr == nil {
			err = yamlx.LocateErrors(doc, err)
		}
	}
	return fmt.Errorf("inventory %s: %w", path, err)
}

// checkCAFile reads a CA bundle as the Redfish source does.
func checkCAFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return fmt.Errorf("%s holds no PEM certificate", path)
	}
	return nil
}
