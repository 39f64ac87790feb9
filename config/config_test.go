package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/limits"
)

// mustParse parses src and fails the test on any error.
func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v", err)
	}
	return cfg
}

const minimal = `
listeners:
  - address: ":8080"
routes:
  - upstream: app
upstreams:
  app:
    peers: ["http://127.0.0.1:9000"]
`

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, minimal)

	wantLimits := Limits{
		MaxRequestLine:     limits.MaxRequestLine,
		MaxHeaderBytes:     limits.MaxHeaderBytes,
		MaxHeaderFields:    limits.MaxHeaderFields,
		HeaderReadTimeout:  limits.HeaderReadTimeout,
		IdleTimeout:        limits.IdleTimeout,
		BodyReadTimeout:    limits.BodyReadTimeout,
		WriteTimeout:       limits.WriteTimeout,
		MaxRequestsPerConn: limits.MaxRequestsPerConn,
		MaxBodyBytes:       limits.MaxBodyBytes,
		MaxConnections:     limits.MaxConnections,
		MaxChunkLine:       limits.MaxChunkLine,
		MaxTrailerBytes:    limits.MaxTrailerBytes,
	}
	if cfg.Limits != wantLimits {
		t.Errorf("Limits = %+v, want %+v", cfg.Limits, wantLimits)
	}
	if want := (Proxy{ForwardedHeaders: "x-forwarded", Via: true}); cfg.Proxy != want {
		t.Errorf("Proxy = %+v, want %+v", cfg.Proxy, want)
	}
	if want := (Log{Level: "info", Format: "text", Access: "stdout"}); cfg.Log != want {
		t.Errorf("Log = %+v, want %+v", cfg.Log, want)
	}
	if cfg.ShutdownGrace != limits.ShutdownGrace {
		t.Errorf("ShutdownGrace = %v, want %v", cfg.ShutdownGrace, limits.ShutdownGrace)
	}
	h2 := HTTP2{
		MaxConcurrentStreams: limits.H2MaxConcurrentStreams,
		MaxHeaderListSize:    limits.MaxHeaderBytes,
		StreamWindow:         limits.H2StreamWindow,
		ConnectionWindow:     limits.H2ConnWindow,
		MaxFrameSize:         limits.H2MaxFrameSize,
		GlitchBudget:         limits.H2GlitchBudget,
		GlitchRate:           limits.H2GlitchRate,
	}
	if want := []Listener{{Name: "listener-1", Address: ":8080", HTTP2: h2, Engine: EngineLoop}}; !reflect.DeepEqual(cfg.Listeners, want) {
		t.Errorf("Listeners = %+v, want %+v", cfg.Listeners, want)
	}
	if want := []Route{{Name: "route-1", Upstream: "app"}}; !reflect.DeepEqual(cfg.Routes, want) {
		t.Errorf("Routes = %+v, want %+v", cfg.Routes, want)
	}

	want := &Upstream{
		Name:     "app",
		Peers:    []Peer{{Address: "127.0.0.1:9000", Scheme: "http", Weight: 1}},
		Scheme:   "http",
		Balancer: "round_robin",
		Keepalive: Keepalive{
			MaxIdle:     limits.PoolMaxIdlePerPeer,
			MaxPerPeer:  limits.PoolMaxPerPeer,
			IdleTimeout: limits.PoolIdleTimeout,
		},
		Timeouts: Timeouts{
			Connect:        limits.ConnectTimeout,
			ResponseHeader: limits.ResponseHeaderTimeout,
			Idle:           limits.UpstreamIdleTimeout,
			Request:        limits.RequestTimeout,
		},
		Retries:                limits.MaxRetries,
		MaxResponseHeaderBytes: limits.MaxResponseHeaderBytes,
		Passive:                Passive{MaxFails: limits.PassiveMaxFails, EjectFor: limits.PassiveEjectFor},
	}
	if got := cfg.Upstreams["app"]; !reflect.DeepEqual(got, want) {
		t.Errorf("Upstreams[app] = %+v, want %+v", got, want)
	}
	if want := []string{"app"}; !reflect.DeepEqual(cfg.UpstreamOrder, want) {
		t.Errorf("UpstreamOrder = %v, want %v", cfg.UpstreamOrder, want)
	}
}

func TestHealthCheckDefaults(t *testing.T) {
	cfg := mustParse(t, minimal+"    health_check: {}\n")
	want := &HealthCheck{
		Type:     "http",
		Path:     "/",
		Interval: limits.HealthInterval,
		Timeout:  limits.HealthTimeout,
		Rise:     limits.HealthRise,
		Fall:     limits.HealthFall,
	}
	if got := cfg.Upstreams["app"].HealthCheck; !reflect.DeepEqual(got, want) {
		t.Errorf("HealthCheck = %+v, want %+v", got, want)
	}

	// A bare key enables it too.
	cfg = mustParse(t, minimal+"    health_check:\n")
	if got := cfg.Upstreams["app"].HealthCheck; !reflect.DeepEqual(got, want) {
		t.Errorf("HealthCheck from null = %+v, want %+v", got, want)
	}

	// A short interval lowers the default timeout with it.
	cfg = mustParse(t, minimal+"    health_check: {interval: 500ms}\n")
	if hc := cfg.Upstreams["app"].HealthCheck; hc.Timeout != 500*time.Millisecond {
		t.Errorf("Timeout = %v, want 500ms (the interval)", hc.Timeout)
	}
}

func TestEverySetting(t *testing.T) {
	cfg := mustParse(t, `
listeners:
  - name: public
    address: "0.0.0.0:80"
  - name: local
    address: "[::1]:8081"
routes:
  - name: api
    match:
      host: [API.Example.com, "*.Example.org.", "::1"]
      path_prefix: /api/
      path_regex: ^/api/v[0-9]+/
      method: [get, POST, get]
      headers: {X-Env: prod, Authorization: "*"}
    upstream: api
    set_host: internal.example:8443
    request_headers:
      add: {X-Via-Weir: "yes", X-Empty: }
      remove: [Cookie, x-debug]
    response_headers:
      add: {Strict-Transport-Security: max-age=63072000}
      remove: Server
  - name: exact
    match: {path: /healthz, host: example.com, method: HEAD}
    upstream: api
upstreams:
  api:
    peers:
      - http://10.0.0.1:8080
      - address: "HTTP://Backend.Example:9000/"
        weight: 5
      - "[2001:db8::1]:7000"
      - localhost
    balancer: consistent_hash
    hash_on: header:X-User-Id
    keepalive: {max_idle: 10, max_per_peer: 50, idle_timeout: 30s}
    timeouts: {connect: 1s, response_header: 10s, idle: 20s, request: 1m30s}
    retries: 0
    max_response_header_bytes: 32KiB
    health_check:
      type: http
      path: /healthz
      host: health.internal
      interval: 3s
      timeout: 1s
      rise: 1
      fall: 5
      expect_status: [200, 204, 200]
    passive_health: {max_fails: 0, eject_for: 1m}
limits:
  max_request_line: 4KiB
  max_header_bytes: 1MB
  max_header_fields: 50
  header_read_timeout: 5s
  idle_timeout: 2m
  body_read_timeout: 30s
  write_timeout: 45s
  max_requests_per_conn: 10
  max_body_bytes: 10MiB
  max_connections: 10000
  max_chunk_line: 512B
  max_trailer_bytes: 8KiB
proxy: {forwarded_headers: both, via: false, trust_forwarded: true}
log: {level: debug, format: json, access: /var/log/weir/access.log}
shutdown_grace: 0s
`)
	h2 := defaultHTTP2()
	h2.MaxHeaderListSize = 1000000 // limits.max_header_bytes
	want := &Config{
		Listeners: []Listener{{Name: "public", Address: "0.0.0.0:80", HTTP2: h2, Engine: EngineLoop}, {Name: "local", Address: "[::1]:8081", HTTP2: h2, Engine: EngineLoop}},
		Routes: []Route{{
			Name: "api",
			Match: Match{
				Hosts:      []string{"api.example.com", "*.example.org", "[::1]"},
				PathPrefix: "/api/",
				PathRegex:  "^/api/v[0-9]+/",
				Methods:    []string{"GET", "POST"},
				Headers:    map[string]string{"X-Env": "prod", "Authorization": "*"},
			},
			Upstream:              "api",
			SetHost:               "internal.example:8443",
			AddRequestHeaders:     map[string]string{"X-Via-Weir": "yes", "X-Empty": ""},
			RemoveRequestHeaders:  []string{"Cookie", "x-debug"},
			AddResponseHeaders:    map[string]string{"Strict-Transport-Security": "max-age=63072000"},
			RemoveResponseHeaders: []string{"Server"},
		}, {
			Name:     "exact",
			Match:    Match{Path: "/healthz", Hosts: []string{"example.com"}, Methods: []string{"HEAD"}},
			Upstream: "api",
		}},
		Upstreams: map[string]*Upstream{"api": {
			Name: "api",
			Peers: []Peer{
				{Address: "10.0.0.1:8080", Scheme: "http", Weight: 1},
				{Address: "backend.example:9000", Scheme: "http", Weight: 5},
				{Address: "[2001:db8::1]:7000", Scheme: "http", Weight: 1},
				{Address: "localhost:80", Scheme: "http", Weight: 1},
			},
			Scheme:    "http",
			Balancer:  "consistent_hash",
			HashOn:    "header:X-User-Id",
			Keepalive: Keepalive{MaxIdle: 10, MaxPerPeer: 50, IdleTimeout: 30 * time.Second},
			Timeouts: Timeouts{Connect: time.Second, ResponseHeader: 10 * time.Second,
				Idle: 20 * time.Second, Request: 90 * time.Second},
			Retries:                0,
			MaxResponseHeaderBytes: 32 << 10,
			HealthCheck: &HealthCheck{Type: "http", Path: "/healthz", Host: "health.internal",
				Interval: 3 * time.Second, Timeout: time.Second, Rise: 1, Fall: 5, ExpectStatus: []int{200, 204}},
			Passive: Passive{MaxFails: 0, EjectFor: time.Minute},
		}},
		UpstreamOrder: []string{"api"},
		Limits: Limits{
			MaxRequestLine:     4 << 10,
			MaxHeaderBytes:     1000000,
			MaxHeaderFields:    50,
			HeaderReadTimeout:  5 * time.Second,
			IdleTimeout:        2 * time.Minute,
			BodyReadTimeout:    30 * time.Second,
			WriteTimeout:       45 * time.Second,
			MaxRequestsPerConn: 10,
			MaxBodyBytes:       10 << 20,
			MaxConnections:     10000,
			MaxChunkLine:       512,
			MaxTrailerBytes:    8 << 10,
		},
		Proxy:         Proxy{ForwardedHeaders: "both", Via: false, TrustForwarded: true},
		Log:           Log{Level: "debug", Format: "json", Access: "/var/log/weir/access.log"},
		ShutdownGrace: 0,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
		for i := range min(len(cfg.Routes), len(want.Routes)) {
			if !reflect.DeepEqual(cfg.Routes[i], want.Routes[i]) {
				t.Errorf("route %d:\ngot  %+v\nwant %+v", i, cfg.Routes[i], want.Routes[i])
			}
		}
		if !reflect.DeepEqual(cfg.Upstreams["api"], want.Upstreams["api"]) {
			t.Errorf("upstream:\ngot  %+v\nwant %+v", cfg.Upstreams["api"], want.Upstreams["api"])
		}
	}
}

func TestSizes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"8192", 8192},
		{`"8192"`, 8192},
		{"512B", 512},
		{"1KB", 1000},
		{"1KiB", 1024},
		{"8KiB", 8 << 10},
		{"64KiB", 64 << 10},
		{"1MiB", 1 << 20},
		{"2MB", 2000000},
		{"1GiB", 1 << 30},
		{"1 kib", 1024},
	} {
		cfg := mustParse(t, minimal+"limits: {max_body_bytes: "+tc.in+"}\n")
		if got := cfg.Limits.MaxBodyBytes; got != int64(tc.want) {
			t.Errorf("max_body_bytes: %s = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestUpstreamOrder(t *testing.T) {
	cfg := mustParse(t, `
listeners: [{address: ":80"}]
upstreams:
  zeta: {peers: ["a:1"]}
  alpha: {peers: ["b:1"]}
  mid: {peers: ["c:1"]}
`)
	if want := []string{"zeta", "alpha", "mid"}; !reflect.DeepEqual(cfg.UpstreamOrder, want) {
		t.Errorf("UpstreamOrder = %v, want %v", cfg.UpstreamOrder, want)
	}
	if len(cfg.Upstreams) != 3 || cfg.Upstreams["mid"].Name != "mid" {
		t.Errorf("Upstreams = %v", cfg.Upstreams)
	}
}

func TestExpectStatusScalar(t *testing.T) {
	cfg := mustParse(t, minimal+"    health_check: {expect_status: 204}\n")
	if got := cfg.Upstreams["app"].HealthCheck.ExpectStatus; !reflect.DeepEqual(got, []int{204}) {
		t.Errorf("ExpectStatus = %v, want [204]", got)
	}
}

func TestKeepaliveDefaultIdleFollowsMaxPerPeer(t *testing.T) {
	cfg := mustParse(t, minimal+"    keepalive: {max_per_peer: 4}\n")
	if k := cfg.Upstreams["app"].Keepalive; k.MaxIdle != 4 || k.MaxPerPeer != 4 {
		t.Errorf("Keepalive = %+v, want MaxIdle 4 (lowered to max_per_peer)", k)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	cfg := mustParse(t, `
listeners: [{address: ":80"}]
x-common: &common
  timeouts: {connect: 2s}
  retries: 5
  peers: ["10.0.0.9:80"]
routes:
  - upstream: a
    request_headers: {add: &hdrs {X-Team: core}}
  - upstream: b
    request_headers: {add: *hdrs}
upstreams:
  a:
    <<: *common
    peers: ["10.0.0.1:80"]
  b:
    <<: [*common, {retries: 9, balancer: p2c}]
`)
	a, b := cfg.Upstreams["a"], cfg.Upstreams["b"]
	if a.Timeouts.Connect != 2*time.Second || a.Retries != 5 || a.Peers[0].Address != "10.0.0.1:80" {
		t.Errorf("a = %+v", a)
	}
	if b.Retries != 5 || b.Balancer != "p2c" || b.Peers[0].Address != "10.0.0.9:80" {
		t.Errorf("b = %+v (earlier merged mappings win)", b)
	}
	if cfg.Routes[1].AddRequestHeaders["X-Team"] != "core" {
		t.Errorf("route 2 headers = %v", cfg.Routes[1].AddRequestHeaders)
	}
}

func TestEmptyTrailingDocument(t *testing.T) {
	mustParse(t, minimal+"---\n")
	mustParse(t, minimal+"...\n")
	mustParse(t, "---\n"+minimal)
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "weir.yaml")
	if err := os.WriteFile(path, []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("Load: %v", err)
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want an fs.ErrNotExist error", err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("listeners: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(bad)
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 || list[0].File != bad {
		t.Fatalf("Load(bad) = %#v, want an ErrorList naming %s", err, bad)
	}
	var one *Error
	if !errors.As(err, &one) || one.Line != 1 || one.Col != 12 {
		t.Errorf("errors.As(*Error) = %+v, want the error at 1:12", one)
	}
}

func TestErrorFormatting(t *testing.T) {
	l := ErrorList{
		{File: "a.yaml", Line: 3, Col: 7, Msg: "first"},
		{File: "a.yaml", Msg: "no position"},
	}
	if got, want := l.Error(), "a.yaml:3:7: first\na.yaml: no position"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestErrorsAreSortedAndComplete(t *testing.T) {
	_, err := Parse("f.yaml", []byte(`
upstreams:
  b: {peers: ["x:0"]}
listeners:
  - address: ":80"
    nmae: x
routes:
  - upstream: nope
limits: {idle_timeout: soon}
`))
	got := strings.Split(err.Error(), "\n")
	want := []string{
		`f.yaml:3:15: invalid peer "x:0" in upstream "b": the port must be a number from 1 to 65535, not "0"`,
		`f.yaml:6:5: unknown key "nmae" in listener; did you mean "name"?`,
		`f.yaml:8:15: route "route-1" sends to upstream "nope", which is not defined`,
		`f.yaml:9:24: invalid duration "soon" for limits.idle_timeout: use Go syntax like 5s or 1m30s`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"address", "name"}
	for _, tc := range []struct{ in, want string }{
		{"adress", "address"},
		{"addres", "address"},
		{"adderss", "address"},
		{"Address", "address"},
		{"nmae", "name"},
		{"port", ""},
		{"x", ""},
	} {
		if got := suggest(tc.in, keys); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
