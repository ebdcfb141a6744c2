package poller

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bmcstream/bmcstream/internal/cfgfile"
	"github.com/bmcstream/bmcstream/pkg/inventory"
)

// Check loads everything a run loads beyond the configuration file
// (LoadConfig has read that one, with its NATS credential and TLS files):
// every inventory file, merged; the credentials file; and for every BMC
// what a run needs to poll it (inventory.CheckFile): an address that is
// one, a credentials reference that resolves (in this environment: the
// BMCSTREAM_CREDENTIALS_* variables count), a CA file that holds a
// certificate. It reports every problem, each under the file and line of
// its entry, never a secret. A run polls the BMCs it reports as down with
// error class config (unpollable.go): the check is where they are caught
// before they are deployed.
func Check(cfg *Config) error {
	var errs []error
	creds, err := inventory.LoadCredentials(cfg.Inventory.CredentialsFile)
	if err != nil {
		errs = append(errs, err)
		creds = nil
	}
	type place struct {
		file string
		line int
	}
	seen := map[string]place{}
	for _, f := range cfg.Inventory.Files {
		inv, err := inventory.Load(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, inventory.CheckEntries(f, inv, inventory.CheckOptions{Credentials: creds, CAFiles: true, DefaultCAFile: cfg.Redfish.CAFile}))
		// Ids repeated across files, which no single file shows: a run
		// refuses the merged inventory.
		for _, b := range inv.All() {
			if at, dup := seen[b.ID]; dup {
				errs = append(errs, fmt.Errorf("inventory %s: line %d: id: %q is already used in %s at line %d", f, b.Line, b.ID, at.file, at.line))
				continue
			}
			seen[b.ID] = place{f, b.Line}
		}
	}
	return errors.Join(errs...)
}

// CheckInventories is Check for a configuration file that LoadConfig
// refused (a malformed NATS seed, say) but that decodes: it checks the
// inventory and credentials files it names, so that --config.check
// reports their problems with the configuration's, all at once. Files
// that cannot be read are left out: LoadConfig has reported them. It
// returns nil when the configuration does not decode.
func CheckInventories(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil
	}
	dir := filepath.Dir(path)
	readable := func(f string) bool { return f != "" && cfgfile.Readable("", f, false) == nil }
	var files []string
	for _, f := range cfg.Inventory.Files {
		if f = cfgfile.Join(dir, f); readable(f) {
			files = append(files, f)
		}
	}
	cfg.Inventory.Files = files
	cfg.Inventory.CredentialsFile = cfgfile.Join(dir, cfg.Inventory.CredentialsFile)
	if cfg.Inventory.CredentialsFile != "" && !readable(cfg.Inventory.CredentialsFile) {
		return nil // every reference would be reported as dangling
	}
	cfg.Redfish.CAFile = cfgfile.Join(dir, cfg.Redfish.CAFile)
	return Check(cfg)
}
