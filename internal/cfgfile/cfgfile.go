// Package cfgfile holds what the programs' configurations share about the
// files they name: paths relative to the configuration file, and checking
// at load that each can be read, so a typo is reported with its key rather
// than as a failure later.
package cfgfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Join resolves p against dir, the configuration file's directory, as
// Prometheus does; empty and absolute paths are left alone.
func Join(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// Readable reports, under key, why path cannot be read: it must be a
// regular file, or a directory when dirOK.
func Readable(key, path string, dirOK bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	defer func() { _ = f.Close() }() // read only: a close error loses nothing
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if st.IsDir() && !dirOK {
		return fmt.Errorf("%s: %s is a directory", key, path)
	}
	return nil
}
