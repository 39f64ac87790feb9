package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirproxy/weir/internal/testkit"
)

// waitFor polls cond until it holds, for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, what, cond)
}

// --- passive health ---

func TestPassiveEjectAndReadmit(t *testing.T) {
	p := NewPeer("127.0.0.1:1", 1, 0, PoolOptions{})
	if !p.Available() || p.Ejected() {
		t.Fatal("new peer not available")
	}
	const eject = 20 * time.Millisecond
	p.ReportFailure(3, eject)
	p.ReportFailure(3, eject)
	if !p.Available() {
		t.Fatal("ejected after 2 of 3 failures")
	}
	p.ReportFailure(3, eject)
	if p.Available() || !p.Ejected() {
		t.Fatal("not ejected after 3 failures")
	}
	waitFor(t, "re-admission", p.Available)
	if p.Ejected() || p.ejectedUntil.Load() != 0 {
		t.Error("ejection not cleared after it expired")
	}
	// Half-open: one more failure ejects again.
	p.ReportFailure(3, time.Hour)
	if p.Available() {
		t.Fatal("half-open peer not re-ejected by one failure")
	}
}

func TestPassiveSuccessResets(t *testing.T) {
	p := NewPeer("127.0.0.1:1", 1, 0, PoolOptions{})
	for range 5 {
		p.ReportFailure(3, time.Hour)
		p.ReportFailure(3, time.Hour)
		p.ReportSuccess()
	}
	if !p.Available() {
		t.Fatal("ejected although failures were never consecutive")
	}
	// A success after re-admission closes the half-open state.
	p.ReportFailure(1, 20*time.Millisecond)
	waitFor(t, "re-admission", p.Available)
	p.ReportSuccess()
	p.ReportFailure(2, time.Hour)
	if !p.Available() {
		t.Fatal("one failure ejected a peer that had recovered")
	}
	p.ReportFailure(2, time.Hour)
	if p.Available() {
		t.Fatal("not ejected after 2 of 2 failures")
	}
}

func TestPassiveDisabled(t *testing.T) {
	p := NewPeer("127.0.0.1:1", 1, 0, PoolOptions{})
	for range 100 {
		p.ReportFailure(0, time.Hour)
		p.ReportFailure(3, 0)
	}
	if !p.Available() {
		t.Fatal("ejected with passive health disabled")
	}
}

func TestPassiveDoesNotExtend(t *testing.T) {
	p := NewPeer("127.0.0.1:1", 1, 0, PoolOptions{})
	p.ReportFailure(1, time.Minute)
	until := p.ejectedUntil.Load()
	// Requests that were in flight when the peer was ejected fail too.
	p.ReportFailure(1, time.Hour)
	if p.ejectedUntil.Load() != until {
		t.Error("failure while ejected extended the ejection")
	}
}

func TestAvailableNeedsUp(t *testing.T) {
	p := NewPeer("127.0.0.1:1", 1, 0, PoolOptions{})
	p.SetUp(false)
	if p.Available() {
		t.Fatal("down peer available")
	}
	p.SetUp(true)
	if !p.Available() {
		t.Fatal("up peer unavailable")
	}
	p.Begin()
	p.Begin()
	p.End()
	if p.Inflight() != 1 {
		t.Errorf("Inflight %d, want 1", p.Inflight())
	}
}

func TestPassiveConcurrent(t *testing.T) {
	p := NewPeer("127.0.0.1:1", 1, 0, PoolOptions{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				switch (g + i) % 3 {
				case 0:
					p.ReportFailure(2, time.Millisecond)
				case 1:
					p.ReportSuccess()
				default:
					p.Available()
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, "re-admission", p.Available)
}

func TestBalancerSkipsEjected(t *testing.T) {
	ps := evenPeers(3)
	b := mustBalancer(t, RoundRobin, ps)
	ps[1].ReportFailure(1, 20*time.Millisecond)
	for range 30 {
		if b.Pick(0, 0) == ps[1] {
			t.Fatal("picked ejected peer")
		}
	}
	waitFor(t, "ejected peer picked again", func() bool { return b.Pick(0, 0) == ps[1] })
}

// --- status line parsing ---

func TestReadStatus(t *testing.T) {
	big := "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("v", 1000)+"\r\n", 20) + "\r\n"
	huge := "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("v", 1000)+"\r\n", 70) + "\r\n"
	cases := []struct {
		name   string
		resp   string
		status int // 0: an error
	}{
		{"ok", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nbody", 200},
		{"500", "HTTP/1.1 500 Oops\r\n\r\n", 500},
		{"HTTP/1.0", "HTTP/1.0 503 Service Unavailable\r\n\r\n", 503},
		{"no reason", "HTTP/1.1 204\r\n\r\n", 204},
		{"100 then 204", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 204},
		{"103 then 503", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 503 x\r\n\r\n", 503},
		{"101 is final", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", 101},
		{"head larger than the first buffer", big, 200},
		{"nothing", "", 0},
		{"unfinished head", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", 0},
		{"no final response", "HTTP/1.1 100 Continue\r\n\r\n", 0},
		{"not HTTP", "SSH-2.0-OpenSSH_9.6\r\n\r\n", 0},
		{"HTTP/2 preface", "HTTP/2 200\r\n\r\n", 0},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", 0},
		{"ambiguous framing", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0},
		{"head too large", huge, 0},
	}
	var h headReader // reused, as a checker does
	for _, chunk := range []int{3, 1 << 20} {
		for _, c := range cases {
			// Deliver the response in pieces to exercise buffering, or at
			// once.
			server, client := net.Pipe()
			go func() {
				for s := c.resp; len(s) > 0; {
					n := min(len(s), chunk)
					if _, err := server.Write([]byte(s[:n])); err != nil {
						break
					}
					s = s[n:]
				}
				server.Close()
			}()
			got, err := h.readStatus(client)
			client.Close()
			if got != c.status || (err != nil) != (c.status == 0) {
				t.Errorf("%s, in pieces of %d: %d, %v; want %d", c.name, chunk, got, err, c.status)
			}
		}
	}
}

func TestHealthConfigValidate(t *testing.T) {
	for _, hc := range []HealthConfig{
		{}, {Type: "tcp"}, {Type: "http"}, {Path: "/healthz?full=1"},
		{Type: "http", Host: "api.example.com:8080", ExpectStatus: []int{200, 204}},
	} {
		if err := hc.Validate(); err != nil {
			t.Errorf("%+v: %v", hc, err)
		}
	}
	for _, hc := range []HealthConfig{
		{Type: "udp"}, {Type: "HTTP"}, {Path: "healthz"}, {Path: "/a b"},
		{Path: "/a\r\nX: y"}, {Path: "/caf\xc3\xa9"}, {Type: "http", Host: "a\r\nb"},
		{Type: "http", Host: "a/b"}, {Host: "a b"},
		{ExpectStatus: []int{99}}, {ExpectStatus: []int{600}},
	} {
		if err := hc.Validate(); err == nil {
			t.Errorf("%+v accepted", hc)
		}
	}
	d := HealthConfig{Path: "/h"}.withDefaults()
	if d.Type != HealthHTTP || d.Interval <= 0 || d.Timeout <= 0 || d.Rise <= 0 || d.Fall <= 0 {
		t.Errorf("defaults not applied: %+v", d)
	}
	if d := (HealthConfig{}).withDefaults(); d.Type != HealthTCP {
		t.Errorf("default type %q, want tcp", d.Type)
	}
}

// --- active health checks over real sockets ---

// origin is a minimal HTTP (or plain TCP) server on 127.0.0.1 whose
// answer can be changed, and which can stop and resume listening on the
// same address.
type origin struct {
	t      *testing.T
	http   bool
	addr   string
	status atomic.Int32 // status to answer with; 0: accept and never answer
	served [600]atomic.Int64
	reqs   chan string // requests received (HTTP), when not full

	mu sync.Mutex
	ln net.Listener
	wg sync.WaitGroup
}

func startOrigin(t *testing.T, http bool) *origin {
	o := &origin{t: t, http: http, reqs: make(chan string, 1)}
	o.status.Store(200)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.addr = ln.Addr().String()
	o.serve(ln)
	t.Cleanup(o.stop)
	return o
}

func (o *origin) serve(ln net.Listener) {
	o.mu.Lock()
	o.ln = ln
	o.mu.Unlock()
	o.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.wg.Go(func() { o.handle(c) })
		}
	})
}

func (o *origin) handle(c net.Conn) {
	defer c.Close()
	if !o.http {
		return
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	var req strings.Builder
	for {
		line, err := br.ReadString('\n')
		req.WriteString(line)
		if err != nil {
			return
		}
		if line == "\r\n" {
			break
		}
	}
	select {
	case o.reqs <- req.String():
	default:
	}
	status := o.status.Load()
	if status == 0 {
		// Hang until the prober gives up and closes.
		io.Copy(io.Discard, br)
		return
	}
	o.served[status].Add(1)
	fmt.Fprintf(c, "HTTP/1.1 %d Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status)
}

// stop closes the listener and waits for every connection to end.
func (o *origin) stop() {
	o.mu.Lock()
	if o.ln != nil {
		o.ln.Close()
		o.ln = nil
	}
	o.mu.Unlock()
	o.wg.Wait()
}

// restart listens on the same address again.
func (o *origin) restart() {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		o.t.Fatalf("listening on %s again: %v", o.addr, err)
	}
	o.serve(ln)
}

// startChecks runs health checks for the test's duration and checks that
// they end on cancel.
func startChecks(t *testing.T, peers []*Peer, hc HealthConfig) *testkit.SyncBuffer {
	t.Helper()
	logs := &testkit.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	wg := startHealthChecks(ctx, peers, hc, log)
	t.Cleanup(func() {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("health checkers still running 5s after cancel")
		}
	})
	return logs
}

func fastHealth(typ string) HealthConfig {
	return HealthConfig{
		Type: typ, Path: "/healthz",
		Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond,
		Rise: 2, Fall: 3,
	}
}

func TestHealthHTTPRequest(t *testing.T) {
	o := startOrigin(t, true)
	p := NewPeer(o.addr, 1, 0, PoolOptions{})
	hc := fastHealth(HealthHTTP)
	hc.Path = "/status?deep=1"
	startChecks(t, []*Peer{p}, hc)
	select {
	case req := <-o.reqs:
		want := "GET /status?deep=1 HTTP/1.1\r\nHost: " + o.addr +
			"\r\nUser-Agent: weir-health\r\nConnection: close\r\n\r\n"
		if req != want {
			t.Errorf("request\n%q\nwant\n%q", req, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no probe arrived")
	}

	o2 := startOrigin(t, true)
	hc.Host = "svc.internal"
	startChecks(t, []*Peer{NewPeer(o2.addr, 1, 0, PoolOptions{})}, hc)
	select {
	case req := <-o2.reqs:
		if !strings.Contains(req, "\r\nHost: svc.internal\r\n") {
			t.Errorf("Host not set: %q", req)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no probe arrived")
	}
}

func TestHealthHTTPStatus(t *testing.T) {
	o := startOrigin(t, true)
	p := NewPeer(o.addr, 1, 0, PoolOptions{})
	p.SetUp(false)
	hc := fastHealth(HealthHTTP)
	logs := startChecks(t, []*Peer{p}, hc)
	if !p.Available() {
		t.Fatal("peer does not start up")
	}
	waitFor(t, "a passing probe", func() bool { return o.served[200].Load() >= 1 })
	if !p.Available() {
		t.Fatal("peer down although its origin answers 200")
	}

	o.status.Store(500)
	waitFor(t, "peer down on 500", func() bool { return !p.Available() })
	if n := o.served[500].Load(); n < int64(hc.Fall) {
		t.Errorf("marked down after %d failed probes, Fall is %d", n, hc.Fall)
	}
	o.status.Store(200)
	before := o.served[200].Load()
	waitFor(t, "peer up again", p.Available)
	if n := o.served[200].Load() - before; n < int64(hc.Rise) {
		t.Errorf("marked up after %d passing probes, Rise is %d", n, hc.Rise)
	}

	l := logs.String()
	for _, want := range []string{
		"upstream peer down", "upstream peer up", "peer=" + o.addr,
		"from=up to=down", "from=down to=up", "status 500",
	} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
}

func TestHealthHTTPStopsListening(t *testing.T) {
	o := startOrigin(t, true)
	p := NewPeer(o.addr, 1, 0, PoolOptions{})
	startChecks(t, []*Peer{p}, fastHealth(HealthHTTP))
	waitFor(t, "a passing probe", func() bool { return o.served[200].Load() >= 1 })

	o.stop()
	waitFor(t, "peer down when its origin stops listening", func() bool { return !p.Available() })
	o.restart()
	waitFor(t, "peer up when its origin listens again", p.Available)
}

func TestHealthHTTPTimeout(t *testing.T) {
	o := startOrigin(t, true)
	o.status.Store(0) // accept, read the request, never answer
	p := NewPeer(o.addr, 1, 0, PoolOptions{})
	hc := fastHealth(HealthHTTP)
	hc.Timeout = 30 * time.Millisecond
	hc.Fall = 2
	logs := startChecks(t, []*Peer{p}, hc)
	waitFor(t, "peer down on timeout", func() bool { return !p.Available() })
	if l := logs.String(); !strings.Contains(l, "timeout") {
		t.Errorf("log does not give the timeout as the reason:\n%s", l)
	}
	o.status.Store(200)
	waitFor(t, "peer up again", p.Available)
}

func TestHealthHTTPExpectStatus(t *testing.T) {
	o := startOrigin(t, true)
	p := NewPeer(o.addr, 1, 0, PoolOptions{})
	hc := fastHealth(HealthHTTP)
	hc.ExpectStatus = []int{204, 418}
	startChecks(t, []*Peer{p}, hc)
	waitFor(t, "peer down on an unexpected 200", func() bool { return !p.Available() })
	o.status.Store(418)
	waitFor(t, "peer up on an expected 418", p.Available)

	// By default 3xx passes and 4xx fails.
	o2 := startOrigin(t, true)
	o2.status.Store(301)
	p2 := NewPeer(o2.addr, 1, 0, PoolOptions{})
	startChecks(t, []*Peer{p2}, fastHealth(HealthHTTP))
	waitFor(t, "probes", func() bool { return o2.served[301].Load() >= 5 })
	if !p2.Available() {
		t.Fatal("301 failed the check")
	}
	o2.status.Store(404)
	waitFor(t, "peer down on 404", func() bool { return !p2.Available() })
}

func TestHealthHTTPNotHTTP(t *testing.T) {
	// A TCP listener that closes at once passes a TCP check but not an
	// HTTP one.
	o := startOrigin(t, false)
	p := NewPeer(o.addr, 1, 0, PoolOptions{})
	logs := startChecks(t, []*Peer{p}, fastHealth(HealthHTTP))
	waitFor(t, "peer down", func() bool { return !p.Available() })
	// The reason is a reset or an EOF, depending on whether the request
	// was written before the origin closed.
	if l := logs.String(); !strings.Contains(l, "reading response head") && !strings.Contains(l, "without a response") {
		t.Errorf("log:\n%s", l)
	}
}

func TestHealthTCP(t *testing.T) {
	o := startOrigin(t, false)
	peers := []*Peer{NewPeer(o.addr, 1, 0, PoolOptions{})}
	// A second peer on a port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	peers = append(peers, NewPeer(dead, 1, 1, PoolOptions{}))

	hc := fastHealth(HealthTCP)
	hc.Path = ""
	logs := startChecks(t, peers, hc)
	waitFor(t, "dead peer down", func() bool { return !peers[1].Available() })
	if !peers[0].Available() {
		t.Fatal("listening peer down")
	}

	o.stop()
	waitFor(t, "peer down when it stops listening", func() bool { return !peers[0].Available() })
	o.restart()
	waitFor(t, "peer up when it listens again", peers[0].Available)
	if l := logs.String(); !strings.Contains(l, "check=tcp") || !strings.Contains(l, "connection refused") {
		t.Errorf("log:\n%s", l)
	}
}

func TestHealthFirstProbeStaggered(t *testing.T) {
	const interval = time.Second
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := firstProbeDelay(interval)
		if d < 0 || d > interval/10 {
			t.Fatalf("first probe delay %v, want within [0, %v]", d, interval/10)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct first probe delays in 1000", len(seen))
	}

	// The first probe does not wait a whole interval.
	o := startOrigin(t, true)
	hc := fastHealth(HealthHTTP)
	hc.Interval = 2 * time.Second
	start := time.Now()
	startChecks(t, []*Peer{NewPeer(o.addr, 1, 0, PoolOptions{})}, hc)
	select {
	case <-o.reqs:
		if d := time.Since(start); d >= hc.Interval {
			t.Errorf("first probe after %v, not before the first interval", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no first probe")
	}
}

func TestHealthStopsOnCancel(t *testing.T) {
	o := startOrigin(t, true)
	o.status.Store(0) // probes hang until their timeout
	p := NewPeer(o.addr, 1, 0, PoolOptions{})
	hc := fastHealth(HealthHTTP)
	hc.Timeout = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	wg := startHealthChecks(ctx, []*Peer{p}, hc, nil)
	waitFor(t, "a probe in flight", func() bool { return len(o.reqs) == 1 })
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("checker did not end on cancel during a probe")
	}
	if !p.Available() {
		t.Error("a probe cut short by cancel marked the peer down")
	}
}

func TestHealthInvalidConfig(t *testing.T) {
	logs := &testkit.SyncBuffer{}
	p := NewPeer("127.0.0.1:1", 1, 0, PoolOptions{})
	wg := startHealthChecks(context.Background(), []*Peer{p}, HealthConfig{Type: "icmp"}, slog.New(slog.NewTextHandler(logs, nil)))
	wg.Wait() // nothing started
	if !strings.Contains(logs.String(), "icmp") {
		t.Errorf("invalid config not logged: %s", logs.String())
	}
	StartHealthChecks(context.Background(), nil, HealthConfig{Type: "icmp"}, nil) // nil logger is fine
}

func TestProbeErrors(t *testing.T) {
	// Errors a probe returns name the cause.
	o := startOrigin(t, true)
	o.status.Store(503)
	c := &checker{peer: NewPeer(o.addr, 1, 0, PoolOptions{}), hc: fastHealth(HealthHTTP).withDefaults()}
	c.req = []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	err := c.probe(context.Background())
	if err == nil || err.Error() != "status 503" {
		t.Errorf("probe: %v", err)
	}
	o.stop()
	err = c.probe(context.Background())
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Errorf("probe of a closed port: %v", err)
	}
}
