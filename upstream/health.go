package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/weirproxy/weir/http1"
	"github.com/weirproxy/weir/limits"
	"github.com/weirproxy/weir/message"
)

// Health check types.
const (
	HealthHTTP = "http"
	HealthTCP  = "tcp"
)

// HealthConfig configures active health checks for a group. Zero fields
// take the defaults in package limits.
type HealthConfig struct {
	// Type is "http" or "tcp". Empty means "http" when Path is set, else
	// "tcp".
	Type string
	// Path is the request target of an HTTP check (default "/").
	Path string
	// Host is the Host field of an HTTP check (default: the peer's Addr).
	Host string
	// Interval is the time between the end of one probe and the start of
	// the next; Timeout bounds one probe, connect included.
	Interval, Timeout time.Duration
	// Rise consecutive passes mark a down peer up; Fall consecutive
	// failures mark an up peer down.
	Rise, Fall int
	// ExpectStatus lists the statuses that pass an HTTP check; nil (or
	// empty) means any 2xx or 3xx.
	ExpectStatus []int
	// TLS, when set, makes every probe complete a TLS handshake (a TCP
	// check passes only once it does) and HTTP checks go over it. An
	// empty ServerName is filled with the peer's host.
	TLS *tls.Config
	// H2, when set, sends HTTP checks as HTTP/2 requests through this
	// transport (the group's own), so that peers that speak only HTTP/2
	// can be checked.
	H2 *H2Transport
}

// withDefaults returns hc with zero fields filled in.
func (hc HealthConfig) withDefaults() HealthConfig {
	if hc.Type == "" {
		hc.Type = HealthTCP
		if hc.Path != "" {
			hc.Type = HealthHTTP
		}
	}
	if hc.Path == "" {
		hc.Path = "/"
	}
	if hc.Interval <= 0 {
		hc.Interval = limits.HealthInterval
	}
	if hc.Timeout <= 0 {
		hc.Timeout = limits.HealthTimeout
	}
	if hc.Rise <= 0 {
		hc.Rise = limits.HealthRise
	}
	if hc.Fall <= 0 {
		hc.Fall = limits.HealthFall
	}
	return hc
}

// Validate reports whether hc (with defaults applied) can be used.
func (hc HealthConfig) Validate() error {
	hc = hc.withDefaults()
	switch hc.Type {
	case HealthHTTP, HealthTCP:
	default:
		return fmt.Errorf("upstream: unknown health check type %q (valid: http, tcp)", hc.Type)
	}
	if hc.Path[0] != '/' || !visibleASCII(hc.Path) {
		return fmt.Errorf("upstream: invalid health check path %q", hc.Path)
	}
	if strings.Contains(hc.Host, "/") || !visibleASCII(hc.Host) {
		return fmt.Errorf("upstream: invalid health check host %q", hc.Host)
	}
	for _, s := range hc.ExpectStatus {
		if s < 100 || s > 599 {
			return fmt.Errorf("upstream: invalid expected health check status %d", s)
		}
	}
	return nil
}

// visibleASCII reports whether s has only visible ASCII characters (no
// space, control or non-ASCII byte), which keeps the request well formed.
func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// StartHealthChecks probes every peer until ctx is done, calling p.SetUp as
// thresholds are crossed. Peers start up. It returns immediately;
// goroutines end when ctx is cancelled. An invalid hc is logged and
// starts no checks (use HealthConfig.Validate when loading configuration).
func StartHealthChecks(ctx context.Context, peers []*Peer, hc HealthConfig, log *slog.Logger) {
	startHealthChecks(ctx, peers, hc, log)
}

// startHealthChecks is StartHealthChecks returning a WaitGroup that is done
// once every checker goroutine has ended.
func startHealthChecks(ctx context.Context, peers []*Peer, hc HealthConfig, log *slog.Logger) *sync.WaitGroup {
	var wg sync.WaitGroup
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := hc.Validate(); err != nil {
		log.Error("health checks disabled", "err", err)
		return &wg
	}
	hc = hc.withDefaults()
	for _, p := range peers {
		p.SetUp(true)
	}
	for _, p := range peers {
		c := &checker{peer: p, hc: hc, log: log, up: true}
		if hc.Type == HealthHTTP {
			host := hc.Host
			if host == "" {
				host = p.Addr
			}
			c.req = []byte("GET " + hc.Path + " HTTP/1.1\r\nHost: " + host +
				"\r\nUser-Agent: weir-health\r\nConnection: close\r\n\r\n")
		}
		wg.Go(func() { c.run(ctx) })
	}
	return &wg
}

// checker probes one peer.
type checker struct {
	peer *Peer
	hc   HealthConfig
	log  *slog.Logger
	req  []byte // HTTP request, prebuilt
	head headReader

	up           bool // state as last set on the peer
	passes, errs int  // consecutive results
}

func (c *checker) run(ctx context.Context) {
	t := time.NewTimer(firstProbeDelay(c.hc.Interval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := c.probe(ctx)
		if ctx.Err() != nil {
			return // a probe cut short by shutdown says nothing of the peer
		}
		c.record(err)
		t.Reset(c.hc.Interval)
	}
}

// firstProbeDelay staggers the first probes, by up to a tenth of the
// interval, so that a group's peers (and groups started together) are not
// all probed in the same instant.
func firstProbeDelay(interval time.Duration) time.Duration {
	return time.Duration(rand.Int64N(int64(interval/10) + 1))
}

// record counts one probe result and flips the peer's state when a
// threshold is crossed.
func (c *checker) record(err error) {
	if err == nil {
		c.errs = 0
		c.passes++
		if !c.up && c.passes >= c.hc.Rise {
			c.up = true
			c.peer.SetUp(true)
			c.log.Info("upstream peer up", "peer", c.peer.Addr, "check", c.hc.Type,
				"from", "down", "to", "up",
				"reason", fmt.Sprintf("%d consecutive passes", c.passes))
		}
		return
	}
	c.passes = 0
	c.errs++
	c.log.Debug("health probe failed", "peer", c.peer.Addr, "check", c.hc.Type,
		"consecutive", c.errs, "err", err)
	if c.up && c.errs >= c.hc.Fall {
		c.up = false
		c.peer.SetUp(false)
		c.log.Warn("upstream peer down", "peer", c.peer.Addr, "check", c.hc.Type,
			"from", "up", "to", "down",
			"reason", fmt.Sprintf("%d consecutive failures, last: %v", c.errs, err))
	}
}

// probe runs one check against the peer; nil means it passed.
func (c *checker) probe(ctx context.Context) error {
	deadline := time.Now().Add(c.hc.Timeout)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if c.hc.H2 != nil && c.hc.Type == HealthHTTP {
		return c.probeH2(dctx)
	}
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", c.peer.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if c.hc.TLS != nil {
		cfg := c.hc.TLS
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			cfg.ServerName, _, _ = net.SplitHostPort(c.peer.Addr)
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			return fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	if c.hc.Type != HealthHTTP {
		return nil
	}
	// Unblock I/O at once on shutdown rather than at the deadline.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := conn.Write(c.req); err != nil {
		return err
	}
	status, err := c.head.readStatus(conn)
	if err != nil {
		return err
	}
	if !c.statusOK(status) {
		return fmt.Errorf("status %d", status)
	}
	return nil
}

// probeH2 sends the check as an HTTP/2 request.
func (c *checker) probeH2(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.hc.H2.Scheme()+"://"+c.peer.Addr+c.hc.Path, nil)
	if err != nil {
		return err
	}
	req.Host = c.hc.Host
	if req.Host == "" {
		req.Host = c.peer.Addr
	}
	req.Header.Set("User-Agent", "weir-health")
	resp, err := c.hc.H2.RoundTrip(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if !c.statusOK(resp.StatusCode) {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func (c *checker) statusOK(status int) bool {
	if len(c.hc.ExpectStatus) == 0 {
		return status >= 200 && status < 400
	}
	for _, s := range c.hc.ExpectStatus {
		if s == status {
			return true
		}
	}
	return false
}

// headReader reads response heads for HTTP probes. Its buffer starts
// small and grows, up to limits.MaxResponseHeaderBytes, for peers whose
// heads need more; it is kept for later probes.
type headReader struct {
	buf  []byte
	resp message.Response
}

const initialHeadBuffer = 4 << 10

// readStatus reads a response from conn and returns the status of its
// final head. Heads are parsed as strictly as the proxy parses responses
// (http1.ParseResponse), so a peer whose answers the proxy would reject
// fails its check. Interim 1xx heads (100 Continue, 103 Early Hints) are
// skipped; 101 is final. The body is left unread.
func (h *headReader) readStatus(conn net.Conn) (int, error) {
	if h.buf == nil {
		h.buf = make([]byte, initialHeadBuffer)
	}
	r, w := 0, 0 // h.buf[r:w] holds bytes read and not yet parsed
	// Parse only after a read that ended a line: a head trickling in a few
	// bytes at a time is then parsed at most once per line (and the
	// parser's field limit bounds the lines), not once per read.
	parse := false
	for {
		if parse {
			h.resp.Reset()
			n, err := http1.ParseResponse(h.buf[r:w], nil, &h.resp)
			switch {
			case err == nil && (h.resp.Status >= 200 || h.resp.Status == 101):
				return h.resp.Status, nil
			case err == nil: // interim response; the next may be here too
				r += n
				continue
			case !errors.Is(err, http1.ErrIncomplete):
				return 0, fmt.Errorf("bad response: %w", err)
			}
		}
		if r > 0 {
			w = copy(h.buf, h.buf[r:w])
			r = 0
		}
		if w == len(h.buf) {
			if len(h.buf) >= limits.MaxResponseHeaderBytes {
				return 0, errors.New("bad response: head too large")
			}
			nb := make([]byte, min(2*len(h.buf), limits.MaxResponseHeaderBytes))
			copy(nb, h.buf[:w])
			h.buf = nb
		}
		n, err := conn.Read(h.buf[w:])
		parse = bytes.IndexByte(h.buf[w:w+n], '\n') >= 0
		w += n
		if n == 0 && err != nil {
			if w == 0 && errors.Is(err, io.EOF) {
				return 0, errors.New("connection closed without a response")
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("reading response head: %w", err)
		}
	}
}
