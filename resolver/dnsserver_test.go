package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/weirproxy/weir/internal/testkit"
)

// zone is what the test nameserver answers for one name.
type zone struct {
	a, aaaa  []netip.Addr
	ttl      uint32
	cname    string // answer with a CNAME to this name, then its addresses
	cnameTTL uint32
	nx       bool             // NXDOMAIN
	rcode    dnsmessage.RCode // answer with this code and nothing else
	soa      *[2]uint32       // SOA in the authority section: {its TTL, MINIMUM}
	truncUDP bool             // over UDP, answer empty with TC set
	forge    bool             // over UDP, send two datagrams that do not match before the answer
	hold     chan struct{}    // when set, answer only once it is closed
	silent   bool             // never answer
}

// testDNS is an authoritative nameserver on 127.0.0.1, UDP and TCP on one
// port, that answers from its zones and counts the questions it gets.
type testDNS struct {
	t      *testing.T
	addr   string
	udp    net.PacketConn
	tcp    net.Listener
	closed chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	zones  map[string]*zone // by name with trailing dot, lower case
	counts map[string]int   // by "proto type name."
	ids    map[uint16]bool
	ports  map[int]bool
}

func newTestDNS(t *testing.T) *testDNS {
	t.Helper()
	s := &testDNS{t: t, closed: make(chan struct{}), zones: map[string]*zone{}, counts: map[string]int{}, ids: map[uint16]bool{}, ports: map[int]bool{}}
	for try := 0; ; try++ {
		udp, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tcp, err := net.Listen("tcp", udp.LocalAddr().String())
		if err != nil {
			udp.Close()
			if try < 20 {
				continue
			}
			t.Fatal(err)
		}
		s.udp, s.tcp, s.addr = udp, tcp, udp.LocalAddr().String()
		break
	}
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
	t.Cleanup(s.close)
	return s
}

func (s *testDNS) close() {
	close(s.closed)
	s.udp.Close()
	s.tcp.Close()
	s.wg.Wait()
}

// set installs the zone for name.
func (s *testDNS) set(name string, z *zone) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zones[strings.ToLower(name)+"."] = z
}

// count returns how many questions of type typ ("A" or "AAAA") for name
// came over proto ("udp", "tcp", "doh").
func (s *testDNS) count(proto, typ, name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[proto+" "+typ+" "+name+"."]
}

func (s *testDNS) serveUDP() {
	defer s.wg.Done()
	for {
		buf := make([]byte, 4096)
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.mu.Lock()
			s.ports[from.(*net.UDPAddr).Port] = true
			s.mu.Unlock()
			for _, out := range s.respond(buf[:n], "udp") {
				s.udp.WriteTo(out, from)
			}
		}()
	}
}

func (s *testDNS) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			go func() { <-s.closed; c.Close() }()
			for {
				var prefix [2]byte
				if _, err := io.ReadFull(c, prefix[:]); err != nil {
					return
				}
				msg := make([]byte, binary.BigEndian.Uint16(prefix[:]))
				if _, err := io.ReadFull(c, msg); err != nil {
					return
				}
				for _, out := range s.respond(msg, "tcp") {
					c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(out))))
					c.Write(out)
				}
			}
		}()
	}
}

// dohHandler answers RFC 8484 POST requests from the same zones.
func (s *testDNS) dohHandler(contentType string, status int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != DoHContentType {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		msg, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		out := s.respond(msg, "doh")
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		if len(out) > 0 {
			w.Write(out[len(out)-1])
		}
	})
}

// respond returns the messages to send back for one query, the real
// answer last, or none.
func (s *testDNS) respond(msg []byte, proto string) [][]byte {
	h, q, key, ok := testkit.Query(msg)
	if !ok {
		return nil
	}
	name := strings.ToLower(q.Name.String())
	s.mu.Lock()
	s.counts[proto+" "+key]++
	s.ids[h.ID] = true
	z := s.zones[name]
	s.mu.Unlock()

	if z == nil {
		z = &zone{nx: true}
	}
	if z.silent {
		return nil
	}
	if z.hold != nil {
		select {
		case <-z.hold:
		case <-s.closed:
			return nil
		}
	}
	var out [][]byte
	if z.forge && proto == "udp" {
		// Wrong ID, then right ID with another question; both carry an
		// address the client must never return.
		other := dnsmessage.Question{Name: dnsmessage.MustNewName("forged.test."), Type: q.Type, Class: q.Class}
		out = append(out, buildAnswer(s.t, h.ID+1, q, &zone{a: []netip.Addr{forged4}, aaaa: []netip.Addr{forged6}, ttl: 60}, false))
		out = append(out, buildAnswer(s.t, h.ID, other, &zone{a: []netip.Addr{forged4}, aaaa: []netip.Addr{forged6}, ttl: 60}, false))
	}
	return append(out, buildAnswer(s.t, h.ID, q, z, z.truncUDP && proto == "udp"))
}

var (
	forged4 = netip.MustParseAddr("203.0.113.66")
	forged6 = netip.MustParseAddr("2001:db8::66")
)

// buildAnswer builds the answer to q from z.
func buildAnswer(t *testing.T, id uint16, q dnsmessage.Question, z *zone, truncated bool) []byte {
	h := dnsmessage.Header{ID: id, Response: true, Authoritative: true, RecursionAvailable: true, Truncated: truncated}
	switch {
	case z.rcode != 0:
		h.RCode = z.rcode
	case z.nx:
		h.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, h)
	b.EnableCompression()
	must(t, b.StartQuestions())
	must(t, b.Question(q))
	must(t, b.StartAnswers())
	if !truncated && h.RCode == dnsmessage.RCodeSuccess {
		owner := q.Name
		if z.cname != "" {
			target := dnsmessage.MustNewName(z.cname + ".")
			must(t, b.CNAMEResource(dnsmessage.ResourceHeader{Name: owner, Class: dnsmessage.ClassINET, TTL: z.cnameTTL}, dnsmessage.CNAMEResource{CNAME: target}))
			owner = target
		}
		rh := dnsmessage.ResourceHeader{Name: owner, Class: dnsmessage.ClassINET, TTL: z.ttl}
		if q.Type == dnsmessage.TypeA {
			for _, a := range z.a {
				must(t, b.AResource(rh, dnsmessage.AResource{A: a.As4()}))
			}
		} else {
			for _, a := range z.aaaa {
				must(t, b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()}))
			}
		}
	}
	must(t, b.StartAuthorities())
	if z.soa != nil && !truncated {
		must(t, b.SOAResource(
			dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("test."), Class: dnsmessage.ClassINET, TTL: z.soa[0]},
			dnsmessage.SOAResource{NS: dnsmessage.MustNewName("ns.test."), MBox: dnsmessage.MustNewName("hostmaster.test."), Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, MinTTL: z.soa[1]}))
	}
	out, err := b.Finish()
	must(t, err)
	return out
}

func must(t *testing.T, err error) {
	if err != nil {
		t.Error(err)
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, what, cond)
}

// errorBackend fails the test when asked anything.
type errorBackend struct{ t *testing.T }

func (b errorBackend) Query(_ context.Context, name string, f Family) (Answer, error) {
	b.t.Errorf("backend asked for %s %s", f, name)
	return Answer{}, errors.New("unexpected query")
}

// backendFunc is a Backend made of a function.
type backendFunc func(ctx context.Context, name string, f Family) (Answer, error)

func (b backendFunc) Query(ctx context.Context, name string, f Family) (Answer, error) {
	return b(ctx, name, f)
}
