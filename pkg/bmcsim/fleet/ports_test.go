package fleet

import (
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

func freeUDPPort(t testing.TB) int {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// freeRange finds n consecutive free TCP ports at or after from.
func freeRange(t *testing.T, from, n int) int {
	t.Helper()
	for base := from; base+n < 65535; base += n {
		ok := true
		for i := range n {
			ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			_ = ln.Close()
		}
		if ok {
			return base
		}
	}
	require.FailNow(t, "no free port range")
	return 0
}
