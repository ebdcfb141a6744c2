package gateway

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bmcstream/bmcstream/internal/cfgfile"
	"github.com/bmcstream/bmcstream/internal/yamlx"
	"github.com/bmcstream/bmcstream/pkg/inventory"
	"github.com/bmcstream/bmcstream/pkg/sinks/remotewrite"
)

// Check loads what a run loads beyond what LoadConfig and New have read
// (the configuration with its NATS credential and TLS files, the
// inventory files, the mapping rules): each remote-write sink's HTTP
// client, built as Run builds it (its TLS and credential files read), and
// every inventory entry's address (inventory.CheckFile: the gateway polls
// nothing, but it checks the fleet's inventory the pollers share, so a
// deployment checked only here still finds the BMCs a poller would report
// down with error class config). path is the configuration file, for the
// lines of the sinks' problems. Every problem is reported.
func Check(path string, cfg *Config) error {
	var errs, sinkErrs []error
	for _, f := range cfg.Inventory.Files {
		errs = append(errs, inventory.CheckFile(f, inventory.CheckOptions{}))
	}
	for i, rc := range cfg.RemoteWrite {
		if _, err := remotewrite.NewClient(rc, "check"); err != nil {
			sinkErrs = append(sinkErrs, fmt.Errorf("remote_write[%d]: %w", i, err))
		}
	}
	if err := errors.Join(sinkErrs...); err != nil {
		if doc, rerr := os.ReadFile(path); rerr == nil {
			err = yamlx.LocateErrors(doc, err)
		}
		errs = append(errs, fmt.Errorf("config %s: %w", path, err))
	}
	return errors.Join(errs...)
}

// CheckInventories checks the inventory files of a configuration file
// that LoadConfig refused but that decodes, so that --config.check
// reports their problems with the configuration's. Files that cannot be
// read are left out: LoadConfig has reported them. It returns nil when
// the configuration does not decode.
func CheckInventories(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil
	}
	cfg.SetDirectory(filepath.Dir(path))
	var errs []error
	for _, f := range cfg.Inventory.Files {
		if cfgfile.Readable("", f, false) == nil {
			errs = append(errs, inventory.CheckFile(f, inventory.CheckOptions{}))
		}
	}
	return errors.Join(errs...)
}
