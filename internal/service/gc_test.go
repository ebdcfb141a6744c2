package service

import (
	"runtime/debug"
	"testing"
)

func TestDefaultGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "")
	if got := DefaultGCPercent(50); got != 50 {
		t.Fatalf("without GOGC: %d, want 50", got)
	}
	if prev := debug.SetGCPercent(77); prev != 50 {
		t.Fatalf("GC percent in effect %d, want 50", prev)
	}
	t.Setenv("GOGC", "77") // the runtime read GOGC at start; 77 is set above as it would have
	if got := DefaultGCPercent(50); got != 77 {
		t.Fatalf("with GOGC=77: %d, want 77 (the environment wins)", got)
	}
	if prev := debug.SetGCPercent(100); prev != 77 {
		t.Fatalf("GC percent in effect %d, want 77: DefaultGCPercent changed it", prev)
	}
}
