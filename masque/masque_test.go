package masque

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/weirproxy/weir/internal/testcert"
)

func TestParseTarget(t *testing.T) {
	good := map[string][2]any{
		"/.well-known/masque/udp/127.0.0.1/53/":        {"127.0.0.1", uint16(53)},
		"/.well-known/masque/udp/example.com/443/":     {"example.com", uint16(443)},
		"/.well-known/masque/udp/2001%3Adb8%3A%3A1/9/": {"2001:db8::1", uint16(9)},
	}
	for p, want := range good {
		h, port, err := ParseTarget(p)
		if err != nil || h != want[0] || port != want[1] {
			t.Errorf("%s: %q %d %v", p, h, port, err)
		}
	}
	for _, p := range []string{
		"/", "/.well-known/masque/udp/", "/.well-known/masque/udp/a/53", "/.well-known/masque/udp/a//",
		"/.well-known/masque/udp/a/0/", "/.well-known/masque/udp/a/65536/", "/.well-known/masque/udp/a/053/",
		"/.well-known/masque/udp/a/5/3/", "/.well-known/masque/udp/a%00b/53/", "/.well-known/masque/udp/a%0d%0ab/53/",
		"/.well-known/masque/udp/fe80::1%25eth0/53/", "/.well-known/masque/udp/%zz/53/", "/.well-known/masque/udp/-a/53/",
	} {
		if h, port, err := ParseTarget(p); err == nil {
			t.Errorf("%s: accepted as %q %d", p, h, port)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	f.Add("/.well-known/masque/udp/127.0.0.1/53/")
	f.Fuzz(func(t *testing.T, p string) {
		h, port, err := ParseTarget(p)
		if err != nil {
			return
		}
		if _, aerr := netip.ParseAddr(h); port == 0 || aerr != nil && !validName(h) {
			t.Fatalf("accepted %q → %q %d", p, h, port)
		}
		// What is accepted round-trips through the template.
		h2, port2, err := ParseTarget(TargetPath(h, port))
		if err != nil || h2 != h || port2 != port {
			t.Fatalf("%q → %q %d → %q %d %v", p, h, port, h2, port2, err)
		}
	})
}

func FuzzParseDatagram(f *testing.F) {
	f.Add([]byte{0, 'h', 'i'})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, data, err := ParseDatagram(b)
		if err == nil && len(data) > len(b) {
			t.Fatalf("id %d data longer than input", id)
		}
	})
}

// udpEcho answers every datagram with itself, on 127.0.0.1.
func udpEcho(t *testing.T) *net.UDPConn {
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	go func() {
		b := make([]byte, 65536)
		for {
			n, a, err := uc.ReadFromUDP(b)
			if err != nil {
				return
			}
			uc.WriteToUDP(b[:n], a)
		}
	}()
	return uc
}

// proxy starts an HTTP/3 server with h on loopback and returns an
// HTTP/3 client connection to it.
func proxy(t *testing.T, h http.Handler) (*http3.ClientConn, string) {
	stls, ctls := testcert.TLSPair(t, []string{"h3"}, "weir.test")
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http3.Server{Handler: h, TLSConfig: http3.ConfigureTLSConfig(stls), EnableDatagrams: true}
	go srv.Serve(pc)
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	qc, err := quic.DialAddr(ctx, pc.LocalAddr().String(), ctls, &quic.Config{EnableDatagrams: true})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http3.Transport{EnableDatagrams: true}
	t.Cleanup(func() { qc.CloseWithError(0, ""); tr.Close() })
	return tr.NewClientConn(qc), pc.LocalAddr().String()
}

func TestConnectUDPRoundTrip(t *testing.T) {
	echo := udpEcho(t)
	flows := make(chan [2]int64, 1)
	h := &Handler{
		Resolve: func(_ context.Context, host string, port uint16) (netip.AddrPort, error) {
			a, err := netip.ParseAddr(host)
			if err != nil || !a.IsLoopback() {
				return netip.AddrPort{}, errors.New("destination not allowed")
			}
			return netip.AddrPortFrom(a, port), nil
		},
		OnFlow: func(_ *http.Request, _ netip.AddrPort, up, down int64, _ error) { flows <- [2]int64{up, down} },
	}
	cc, authority := proxy(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, _, err := Dial(ctx, cc, authority, echo.LocalAddr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Datagrams may be lost: send until the echo comes back, bounded.
	got := ""
	for i := 0; i < 50 && got == ""; i++ {
		if err := c.Send([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		b, err := c.Receive(rctx)
		rcancel()
		if err == nil {
			got = string(b)
		}
	}
	if got != "ping" {
		t.Fatalf("echo %q", got)
	}
	c.Close()
	select {
	case f := <-flows:
		if f[0] < 4 || f[1] < 4 {
			t.Fatalf("flow counted %v bytes", f)
		}
	case <-ctx.Done():
		t.Fatal("the flow did not end after the client closed it")
	}

	// A refused target is a 403 with the reason.
	_, resp, err := Dial(ctx, cc, authority, "10.0.0.1:53", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden || resp.Header.Get("Proxy-Status") == "" {
		t.Fatalf("refused target: %v %+v", err, resp)
	}
}
