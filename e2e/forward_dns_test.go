package e2e

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/weirproxy/weir/internal/testkit"
	"github.com/weirproxy/weir/internal/testutil"
)

// TestForwardProxyDNSServer: `weir forward-proxy --dns-server` resolves a
// made-up name with the given nameserver and reaches the local origin it
// names; the second request is answered from the cache.
func TestForwardProxyDNSServer(t *testing.T) {
	t.Parallel()
	ns := testkit.NewDNS(map[string]netip.Addr{"origin.weir.test.": netip.MustParseAddr("127.0.0.1")})
	nsAddr := ns.ServeUDP(t)
	o := remoteOrigin(t)
	port := strconv.Itoa(int(portOf(t, o.addr())))
	p := testutil.StartProcess(t, func(addr string) []string {
		return []string{weirBin, "forward-proxy", "--listen", addr, "--allow-private", "--connect-ports", port,
			"--dns-server", nsAddr, "--access-log", "stderr"}
	})
	for i, args := range [][]string{
		{"-x", "http://" + p.Addr, "http://origin.weir.test:" + port + "/first"},
		{"-p", "-x", "http://" + p.Addr, "http://origin.weir.test:" + port + "/second"},
		{"--socks5-hostname", p.Addr, "http://origin.weir.test:" + port + "/third"},
	} {
		out, errs, code := fwdCurl(t, args...)
		path := args[len(args)-1][strings.LastIndexByte(args[len(args)-1], '/'):]
		if code != 0 || out != "from 127.0.0.1 path "+path {
			t.Fatalf("request %d through a name only the test's nameserver knows: exit %d %q; %s", i+1, code, out, errs)
		}
	}
	if n := ns.Count("A origin.weir.test."); n != 1 {
		t.Errorf("the nameserver was asked %d times for the A record, want once (then the cache)", n)
	}
	if _, errs, code := fwdCurl(t, "--socks5-hostname", p.Addr, "http://nowhere.weir.test:"+port+"/"); code != 97 || !strings.Contains(errs, "(4)") {
		t.Errorf("a name the nameserver does not know: exit %d, %q; want 97 and reply (4), host unreachable", code, errs)
	}
}
