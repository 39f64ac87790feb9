package e2e

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/weirproxy/weir/internal/testutil"
)

// fakeNameserver is a DNS server on 127.0.0.1 (UDP) that knows a few
// names' A records, answers NODATA for their other types and NXDOMAIN for
// any other name, and counts the questions it gets by "TYPE name.".
type fakeNameserver struct {
	addr  string
	names map[string]netip.Addr
	mu    sync.Mutex
	asked map[string]int
}

func startFakeNameserver(t *testing.T, names map[string]netip.Addr) *fakeNameserver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ns := &fakeNameserver{addr: pc.LocalAddr().String(), names: names, asked: map[string]int{}}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := ns.answer(buf[:n]); out != nil {
				_, _ = pc.WriteTo(out, from)
			}
		}
	})
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	return ns
}

func (ns *fakeNameserver) answer(msg []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	name := strings.ToLower(q.Name.String())
	ns.mu.Lock()
	ns.asked[strings.TrimPrefix(q.Type.String(), "Type")+" "+name]++
	ns.mu.Unlock()
	addr, known := ns.names[name]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	if known && q.Type == dnsmessage.TypeA {
		_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 300},
			dnsmessage.AResource{A: addr.As4()})
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

func (ns *fakeNameserver) count(q string) int {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return ns.asked[q]
}

// TestForwardProxyDNSServer: `weir forward-proxy --dns-server` resolves a
// made-up name with the given nameserver and reaches the local origin it
// names; the second request is answered from the cache.
func TestForwardProxyDNSServer(t *testing.T) {
	t.Parallel()
	ns := startFakeNameserver(t, map[string]netip.Addr{"origin.weir.test.": netip.MustParseAddr("127.0.0.1")})
	o := remoteOrigin(t)
	port := strconv.Itoa(int(portOf(t, o.addr())))
	p := testutil.StartProcess(t, func(addr string) []string {
		return []string{weirBin, "forward-proxy", "--listen", addr, "--allow-private", "--connect-ports", port,
			"--dns-server", ns.addr, "--access-log", "stderr"}
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
	if n := ns.count("A origin.weir.test."); n != 1 {
		t.Errorf("the nameserver was asked %d times for the A record, want once (then the cache)", n)
	}
	if _, errs, code := fwdCurl(t, "--socks5-hostname", p.Addr, "http://nowhere.weir.test:"+port+"/"); code != 97 || !strings.Contains(errs, "(4)") {
		t.Errorf("a name the nameserver does not know: exit %d, %q; want 97 and reply (4), host unreachable", code, errs)
	}
}
