package forward

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/socks5"
)

// TestForwardSSRFRefused: with the default policy, every way of naming a
// loopback, private or metadata address is refused over CONNECT,
// absolute-form and SOCKS5, and no connection is even attempted.
func TestForwardSSRFRefused(t *testing.T) {
	origin := newEchoOrigin(t, false)
	port := strconv.Itoa(int(origin.port()))
	p := startProxy(t, Options{
		// The ports are allowed, so that only the address is refused.
		Policy:   egress.PolicyConfig{ConnectPorts: []uint16{origin.port(), 80, 443}},
		Resolver: testResolver,
	})
	targets := []string{
		"127.0.0.1:" + port,
		"10.0.0.1:" + port,
		"169.254.169.254:80",
		"[::1]:" + port,
		"[::ffff:127.0.0.1]:" + port,
		"[::ffff:a9fe:a9fe]:80", // 169.254.169.254, IPv4-mapped in hex
		"origin.test:" + port,   // a name that resolves to 127.0.0.1
		"localhost:" + port,
		"metadata.test:80",
		"private.test:443",
		"mixed.test:" + port, // every address it has is refused
	}
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			resp, body := rawRequest(t, p.addr, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
			if resp.StatusCode != 403 {
				t.Errorf("CONNECT: %d %q, want 403", resp.StatusCode, body)
			}
			if ps := resp.Header.Get("Proxy-Status"); !strings.HasPrefix(ps, "weir; error=destination_ip_prohibited; details=") {
				t.Errorf("CONNECT: Proxy-Status %q", ps)
			}

			resp, body = rawRequest(t, p.addr, "GET http://"+target+"/latest/meta-data/ HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp.StatusCode != 403 {
				t.Errorf("absolute-form GET: %d %q, want 403", resp.StatusCode, body)
			}

			_, err := socksDial(t, p.addr, target, "", "")
			var re *socks5.ReplyError
			if !errors.As(err, &re) || re.Code != socks5.NotAllowed {
				t.Errorf("SOCKS5 CONNECT: %v, want reply %d (not allowed)", err, socks5.NotAllowed)
			}
		})
	}
	if n := p.dials.Load(); n != 0 {
		t.Errorf("the proxy attempted %d outbound connections to refused destinations", n)
	}
	if n := origin.accepts.Load(); n != 0 {
		t.Errorf("the loopback origin accepted %d connections", n)
	}
}

// TestForwardPolicyPorts: tunnels reach only ConnectPorts; forwarded
// requests any port unless HTTPPorts says otherwise.
func TestForwardPolicyPorts(t *testing.T) {
	origin := newEchoOrigin(t, false)
	p := startProxy(t, Options{Policy: egress.PolicyConfig{AllowPrivate: true, HTTPPorts: []uint16{80}}})
	resp, _ := rawRequest(t, p.addr, "GET http://"+origin.hostport()+"/ HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("Proxy-Status"), "port") {
		t.Errorf("GET to a port outside HTTPPorts: %d %q", resp.StatusCode, resp.Header.Get("Proxy-Status"))
	}
	_, err := socksDial(t, p.addr, origin.hostport(), "", "")
	var re *socks5.ReplyError
	if !errors.As(err, &re) || re.Code != socks5.NotAllowed {
		t.Errorf("SOCKS5 CONNECT to a port outside ConnectPorts: %v", err)
	}
	if n := p.dials.Load(); n != 0 {
		t.Errorf("%d dials", n)
	}
}
