package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir"
)

// statusOrigin answers /a with 200, POST /b with 201 and anything else
// with 404.
func statusOrigin(t testing.TB) *origin {
	return newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch {
		case r.URL.Path == "/a":
			_, _ = io.WriteString(w, "a")
		case r.URL.Path == "/b" && r.Method == "POST":
			w.WriteHeader(201)
		default:
			http.NotFound(w, r)
		}
	}))
}

type accessWant struct {
	method, path string
	status       int
}

var accessRequests = []accessWant{{"GET", "/a", 200}, {"POST", "/b", 201}, {"GET", "/missing", 404}}

// sendAccessRequests sends accessRequests in order.
func sendAccessRequests(t testing.TB, p *proxyUnderTest) {
	t.Helper()
	c := newClient(t)
	for _, r := range accessRequests {
		req, _ := http.NewRequest(r.method, p.url(r.path), strings.NewReader("xyz"))
		if r.method == "GET" {
			req.Body, req.ContentLength = nil, 0
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != r.status {
			t.Fatalf("%s %s: status %d, want %d", r.method, r.path, resp.StatusCode, r.status)
		}
	}
}

// accessLines waits until read returns n complete lines and returns them.
func accessLines(t testing.TB, n int, read func() string) []string {
	t.Helper()
	var lines []string
	waitFor(t, 5*time.Second, fmt.Sprintf("%d access lines", n), func() bool {
		s := read()
		lines = strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		return strings.HasSuffix(s, "\n") && len(lines) >= n
	})
	if len(lines) != n {
		t.Fatalf("got %d access lines, want %d:\n%s", len(lines), n, strings.Join(lines, "\n"))
	}
	return lines
}

// TestAccessLog: one access line per request naming the method, path,
// status and upstream, as text or as JSON, to a file or to a writer.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	o := statusOrigin(t)
	checkText := func(t *testing.T, lines []string) {
		t.Helper()
		for i, w := range accessRequests {
			for _, part := range []string{
				"msg=access", "method=" + w.method, "path=" + w.path,
				fmt.Sprintf("status=%d", w.status), "upstream=" + o.addr(), "client=127.0.0.1",
			} {
				if !strings.Contains(" "+lines[i]+" ", " "+part+" ") {
					t.Errorf("access line %d lacks %q: %s", i+1, part, lines[i])
				}
			}
		}
	}
	t.Run("text file", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "access.log")
		p := startWeir(t, oneRouteConfig(o, "", "log:\n  access: "+file+"\n"), weir.Options{})
		sendAccessRequests(t, p)
		checkText(t, accessLines(t, 3, func() string { b, _ := os.ReadFile(file); return string(b) }))
	})
	t.Run("json file", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "access.json")
		p := startWeir(t, oneRouteConfig(o, "", "log:\n  access: "+file+"\n  format: json\n"), weir.Options{})
		sendAccessRequests(t, p)
		lines := accessLines(t, 3, func() string { b, _ := os.ReadFile(file); return string(b) })
		for i, w := range accessRequests {
			var m map[string]any
			if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
				t.Fatalf("access line %d is not JSON: %v\n%s", i+1, err, lines[i])
			}
			if m["msg"] != "access" || m["method"] != w.method || m["path"] != w.path ||
				m["status"] != float64(w.status) || m["upstream"] != o.addr() || m["client"] != "127.0.0.1" {
				t.Errorf("access line %d = %v, want method %s path %s status %d upstream %s",
					i+1, m, w.method, w.path, w.status, o.addr())
			}
			if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m["time"])); err != nil {
				t.Errorf("access line %d: time %v: %v", i+1, m["time"], err)
			}
		}
	})
	t.Run("Options.AccessLog", func(t *testing.T) {
		t.Parallel()
		buf := &syncBuffer{}
		p := startWeir(t, oneRouteConfig(o, "", ""), weir.Options{AccessLog: buf})
		sendAccessRequests(t, p)
		checkText(t, accessLines(t, 3, buf.String))
	})
}
