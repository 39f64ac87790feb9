package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/quic-go/quic-go/http3"

	"github.com/weirproxy/weir/internal/testcert"
	"github.com/weirproxy/weir/proxy"
	"github.com/weirproxy/weir/upstream"
)

// TestHTTP3 sends HTTP/3 requests with quic-go's client through Weir to
// an HTTP/1.1 origin: a 5 MiB body up, a 5 MiB body down, and Alt-Svc
// advertised on the TCP listener of the same port.
func TestHTTP3(t *testing.T) {
	const size = 5 << 20
	big := randomBytes(t, size)
	origin := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
		case "/download":
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			w.Write(big)
		default:
			io.WriteString(w, r.Proto)
		}
	}))
	stls, ctls := testcert.TLSPair(t, []string{"h2", "http/1.1"}, "weir.test")
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	altSvc := fmt.Sprintf(`h3=":%d"; ma=86400`, port)
	srv, addr := engineFront(t, &proxy.ListenerOptions{TLS: stls, AltSvc: altSvc}, nil, upstream.ProtoHTTP1, origin.addr())
	go srv.ServeHTTP3(pc, stls, nil)

	ctls.NextProtos = nil
	tr := &http3.Transport{TLSClientConfig: ctls}
	defer tr.Close()
	c := &http.Client{Transport: tr}
	h3 := "https://" + pc.LocalAddr().String()

	resp, err := c.Post(h3+"/upload", "application/octet-stream", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf("%d %x", size, sha256.Sum256(big))
	if resp.ProtoMajor != 3 || string(got) != want {
		t.Fatalf("upload over %s: origin saw %q, want %q", resp.Proto, got, want)
	}

	resp, err = c.Get(h3 + "/download")
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("download: %d bytes, err %v", len(got), err)
	}

	// The TCP listener (HTTP/2 here) advertises HTTP/3.
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: ctls, ForceAttemptHTTP2: true}}
	resp, err = h2.Get("https://" + addr + "/proto")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if a := resp.Header.Get("Alt-Svc"); a != altSvc {
		t.Fatalf("Alt-Svc %q, want %q", a, altSvc)
	}
}
