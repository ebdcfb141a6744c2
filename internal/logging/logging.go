// Package logging builds the root slog logger of a program from its
// --log.level and --log.format flags.
package logging

import (
	"io"
	"log/slog"
)

// New returns a logger writing logfmt-like text or JSON at the given level.
func New(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // the flags are an enum of valid levels; anything else stays info
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
