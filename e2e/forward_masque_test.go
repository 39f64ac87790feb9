package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/weirproxy/weir/internal/testutil"
	"github.com/weirproxy/weir/masque"
)

// udpEchoServer answers every datagram on 127.0.0.1 with itself.
func udpEchoServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	})
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	return pc.LocalAddr().String()
}

// masqueClient opens an HTTP/3 connection with datagrams to the proxy's
// UDP port.
func masqueClient(t *testing.T, addr string, roots *x509.CertPool) *http3.ClientConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	qc, err := quic.DialAddr(ctx, addr, &tls.Config{RootCAs: roots, NextProtos: []string{http3.NextProtoH3}},
		&quic.Config{EnableDatagrams: true})
	if err != nil {
		t.Fatalf("QUIC to %s: %v", addr, err)
	}
	tr := &http3.Transport{EnableDatagrams: true}
	t.Cleanup(func() { _ = qc.CloseWithError(0, ""); tr.Close() })
	return tr.NewClientConn(qc)
}

// startMASQUEProxy runs `weir forward-proxy --http3` with extra flags.
func startMASQUEProxy(t *testing.T, extra ...string) (*testutil.Process, *x509.CertPool) {
	t.Helper()
	certPath, keyPath, pool := proxyCertFiles(t)
	p := testutil.StartProcess(t, func(addr string) []string {
		return append([]string{weirBin, "forward-proxy", "--listen", addr, "--tls-cert", certPath, "--tls-key", keyPath,
			"--http3", "--access-log", "stderr"}, extra...)
	})
	return p, pool
}

// TestForwardProxyMASQUE: `weir forward-proxy --http3` relays UDP for a
// CONNECT-UDP client to a local echo server, asks for credentials first,
// and, without --allow-private, refuses a loopback target with 403.
func TestForwardProxyMASQUE(t *testing.T) {
	t.Parallel()
	echo := udpEchoServer(t)
	p, pool := startMASQUEProxy(t, "--allow-private", "--auth", "alice:wonderland")
	cc := masqueClient(t, p.Addr, pool)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if _, resp, err := masque.Dial(ctx, cc, p.Addr, echo, nil); err == nil || resp == nil || resp.StatusCode != 407 {
		t.Fatalf("CONNECT-UDP without credentials: %v %v, want 407", resp, err)
	}
	cred := http.Header{"Proxy-Authorization": {"Basic YWxpY2U6d29uZGVybGFuZA=="}} // alice:wonderland
	c, _, err := masque.Dial(ctx, cc, p.Addr, echo, cred)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("datagram through weir")
	var got []byte
	for i := 0; i < 50 && got == nil; i++ { // datagrams may be lost: resend, bounded
		if err := c.Send(msg); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		if b, err := c.Receive(rctx); err == nil {
			got = b
		}
		rcancel()
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo through MASQUE: %q, want %q", got, msg)
	}
	c.Close()
	testutil.WaitFor(t, 10*time.Second, "the flow's access line", func() bool {
		l := p.Stderr.String()
		return strings.Contains(l, "proto=masque") && strings.Contains(l, "user=alice") && strings.Contains(l, "status=200")
	})

	strict, strictPool := startMASQUEProxy(t)
	sc := masqueClient(t, strict.Addr, strictPool)
	_, resp, err := masque.Dial(ctx, sc, strict.Addr, echo, nil)
	if err == nil || resp == nil || resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("Proxy-Status"), "loopback") {
		t.Fatalf("CONNECT-UDP to loopback without --allow-private: %v %v, want 403 naming loopback", resp, err)
	}
}
