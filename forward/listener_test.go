package forward

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/egress"
)

// plainListener hands out connections that offer no socket access, so the
// server must read the first byte and give it back instead of peeking.
type plainListener struct{ net.Listener }

type plainConn struct{ net.Conn }

func (l plainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return plainConn{c}, nil
}

func TestFirstByteWithoutPeek(t *testing.T) {
	origin := newEchoOrigin(t, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, Options{
		Listener: plainListener{ln},
		Policy:   egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{origin.port()}},
	})
	resp, body := rawRequest(t, p.addr, "GET http://"+origin.hostport()+"/replayed HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "hello from") {
		t.Fatalf("HTTP over a connection without peek: %d %q", resp.StatusCode, body)
	}
	c, err := socksDial(t, p.addr, origin.hostport(), "", "")
	if err != nil {
		t.Fatalf("SOCKS5 over a connection without peek: %v", err)
	}
	if r, _ := getOver(t, c, origin.hostport(), "/"); r.StatusCode != 200 {
		t.Fatalf("tunnel: %d", r.StatusCode)
	}
	c.Close()
	hc := dial(t, p.addr)
	_ = hc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(hc, "CONNECT %s HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", origin.hostport())
	br := bufio.NewReader(hc)
	for _, method := range []string{"CONNECT", "GET"} {
		r, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("%s over a connection without peek: %v %v", method, r, err)
		}
	}
}
