package ipmi

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmcstream/bmcstream/pkg/bmcsim/model"
)

// TestIdleCost measures what an idle virtual BMC costs the fleet process:
// goroutines and Go heap per serving BMC, with the tables shared as a fleet
// shares them and with private ones. It fails if an idle BMC needs more
// than two goroutines (the read loop and go-ipmi's parked session evictor).
func TestIdleCost(t *testing.T) {
	if testing.Short() {
		t.Skip("binds hundreds of sockets")
	}
	ps, err := model.Builtin()
	require.NoError(t, err)
	names := model.Names(ps)
	const n = 300
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			var sh *Shared
			if shared {
				sh = NewShared()
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			g0 := runtime.NumGoroutine()

			servers := make([]*Server, 0, n)
			errc := make(chan error, n)
			for i := range n {
				p := ps[names[i%len(names)]]
				b := model.NewBMC(fmt.Sprintf("bmc-%04d", i), "r01", p, model.Room{Seed: 1}, "operator", "pw")
				s, err := New(b, Options{Shared: sh})
				require.NoError(t, err)
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				require.NoError(t, err)
				servers = append(servers, s)
				go func() { errc <- s.Serve(context.Background(), pc) }()
			}
			require.Eventually(t, func() bool { return runtime.NumGoroutine()-g0 >= 2*n }, 10*time.Second, 10*time.Millisecond)
			// Stragglers, if any, would show up within a moment. (Not
			// require.Never: it checks from goroutines of its own.)
			tick := time.NewTicker(10 * time.Millisecond)
			for range 10 {
				<-tick.C
				require.LessOrEqual(t, runtime.NumGoroutine()-g0, 2*n, "goroutines of idle BMCs")
			}
			tick.Stop()
			goroutines := runtime.NumGoroutine() - g0
			runtime.GC()
			runtime.ReadMemStats(&after)
			heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			t.Logf("idle virtual BMC: %.2f goroutines, %d B heap (%d B goroutine stacks)",
				float64(goroutines)/n, heap/n, int64(after.StackInuse-before.StackInuse)/n)
			require.Equal(t, 2*n, goroutines)

			for _, s := range servers {
				require.NoError(t, s.Close())
			}
			for range n {
				require.NoError(t, <-errc)
			}
		})
	}
}
