package e2e

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/filters/accesslog"
	"github.com/weirproxy/weir/internal/testcert"
	"github.com/weirproxy/weir/internal/testutil"
	"github.com/weirproxy/weir/message"
	"github.com/weirproxy/weir/observe"
	"github.com/weirproxy/weir/proxy"
	"github.com/weirproxy/weir/tlsfp"
	"github.com/weirproxy/weir/upstream"
)

// ja4Filter hands the client's JA4 to the origin, as a filter that
// blocks or routes on fingerprints would read it.
type ja4Filter struct{}

func (ja4Filter) UpstreamRequestFilter(s *proxy.Session, req *message.Request) error {
	if s.TLSInfo != nil {
		req.Header.SetString("X-JA4", s.TLSInfo.JA4)
	}
	return nil
}

// TestJA4Fingerprint shows the JA4 and JA3 of a TLS client reaching a
// filter and the access log, over HTTP/1.1 and HTTP/2.
func TestJA4Fingerprint(t *testing.T) {
	seen := make(chan string, 4)
	origin := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("X-JA4")
		io.WriteString(w, "ok")
	}))
	var logs testutil.SyncBuffer
	lw := observe.NewLineWriter(&logs, 10*time.Millisecond)
	stls, ctls := testcert.TLSPair(t, []string{"h2", "http/1.1"}, "weir.test")
	srv, addr := engineFront(t, &proxy.ListenerOptions{TLS: stls, Fingerprint: tlsfp.Fingerprint},
		nil, upstream.ProtoHTTP1, origin.addr())
	h := srv.Handler()
	h2 := *h
	h2.Chain = proxy.MustChain(ja4Filter{}, accesslog.New(lw, accesslog.Text))
	srv.SetHandler(&h2)

	shape := regexp.MustCompile(`^t13d\d{4}(h2|h1)_[0-9a-f]{12}_[0-9a-f]{12}$`)
	for _, proto := range []string{"h2", "http/1.1"} {
		c := ctls.Clone()
		c.NextProtos = []string{proto}
		cl := &http.Client{Transport: &http.Transport{TLSClientConfig: c, ForceAttemptHTTP2: proto == "h2"}}
		resp, err := cl.Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ja4 := <-seen
		if !shape.MatchString(ja4) {
			t.Fatalf("%s: origin got JA4 %q", proto, ja4)
		}
		if !testutil.Eventually(5*time.Second, func() bool { return strings.Contains(logs.String(), "ja4="+ja4) }) {
			t.Fatalf("%s: no access log line with ja4=%s:\n%s", proto, ja4, logs.String())
		}
	}
	t.Logf("access log:\n%s", logs.String())
}
