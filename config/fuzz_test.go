package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error it reports
// has a position inside the input, and that every configuration it
// accepts keeps the promises of the Config documentation.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			checkErrors(t, data, err)
			if cfg != nil {
				t.Fatal("Parse returned both a config and an error")
			}
			if _, again := Parse("fuzz.yaml", data); again == nil || again.Error() != err.Error() {
				t.Fatalf("Parse is not deterministic:\n%v\nthen:\n%v", err, again)
			}
			return
		}
		checkConfig(t, cfg)
	})
}

func checkErrors(t *testing.T, data []byte, err error) {
	var list ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		t.Fatalf("error %T %q is not a non-empty ErrorList", err, err)
	}
	lines := len(lineEnds(data))
	for i, e := range list {
		if e.File != "fuzz.yaml" || e.Msg == "" || strings.ContainsAny(e.Msg, "\r\n") {
			t.Errorf("error %d: bad file or message: %#v", i, e)
		}
		if e.Line < 1 || e.Col < 1 {
			t.Errorf("error %d has no position: %v", i, e)
		}
		if e.Line > lines+1 {
			t.Errorf("error %d is past the end of the input (%d lines): %v", i, lines, e)
		}
		if i > 0 && (e.Line < list[i-1].Line || e.Line == list[i-1].Line && e.Col < list[i-1].Col) {
			t.Errorf("errors are not sorted: %v before %v", list[i-1], e)
		}
	}
}

func checkConfig(t *testing.T, cfg *Config) {
	if len(cfg.Listeners) == 0 {
		t.Error("accepted a config without listeners")
	}
	for _, l := range cfg.Listeners {
		if l.Name == "" || l.Address == "" {
			t.Errorf("listener without name or address: %+v", l)
		}
		h := l.HTTP2
		if h.MaxConcurrentStreams < 1 || h.MaxHeaderListSize < 1 || h.StreamWindow < 65535 || h.ConnectionWindow < 65535 ||
			h.MaxFrameSize < 16384 || h.GlitchBudget < 1 || h.GlitchRate < 1 {
			t.Errorf("listener %q: bad HTTP/2 limits %+v", l.Name, h)
		}
		if l.TLS == nil {
			if l.HTTP3.Enabled || h.Enabled != h.H2C {
				t.Errorf("cleartext listener %q with HTTP/3 or inconsistent HTTP/2: %+v", l.Name, l)
			}
			continue
		}
		if h.H2C || (len(l.TLS.Certificates) == 0) == (l.TLS.ACME == nil) || len(l.TLS.ALPN) == 0 ||
			h.Enabled != slices.Contains(l.TLS.ALPN, "h2") || l.TLS.DefaultCertificate < 0 ||
			(l.TLS.ACME == nil && l.TLS.DefaultCertificate >= len(l.TLS.Certificates)) {
			t.Errorf("TLS listener %q: bad settings %+v %+v", l.Name, l.TLS, h)
		}
	}
	for _, r := range cfg.Routes {
		if r.Name == "" || cfg.Upstreams[r.Upstream] == nil {
			t.Errorf("route without name or with an undefined upstream: %+v", r)
		}
	}
	if len(cfg.UpstreamOrder) != len(cfg.Upstreams) {
		t.Errorf("UpstreamOrder %v does not match Upstreams", cfg.UpstreamOrder)
	}
	for _, name := range cfg.UpstreamOrder {
		u := cfg.Upstreams[name]
		if u == nil || u.Name != name || len(u.Peers) == 0 {
			t.Fatalf("upstream %q is missing, misnamed or has no peers: %+v", name, u)
		}
		for _, p := range u.Peers {
			if p.Scheme != u.Scheme || p.Weight < 1 || p.Weight > maxWeight || p.Address == "" {
				t.Errorf("upstream %q: bad peer %+v", name, p)
			}
		}
		if !slices.Contains(peerSchemes, u.Scheme) || (u.TLS != nil && u.Scheme != "https" && u.Scheme != "h2") {
			t.Errorf("upstream %q: scheme %q with TLS %+v", name, u.Scheme, u.TLS)
		}
		if (u.Balancer == "consistent_hash") != (u.HashOn != "") {
			t.Errorf("upstream %q: balancer %q with hash_on %q", name, u.Balancer, u.HashOn)
		}
		if u.Timeouts.Connect <= 0 || u.Keepalive.IdleTimeout <= 0 || u.Retries < 0 {
			t.Errorf("upstream %q: bad defaults %+v", name, u)
		}
		if hc := u.HealthCheck; hc != nil && (hc.Interval <= 0 || hc.Timeout <= 0 || hc.Timeout > hc.Interval || hc.Rise < 1 || hc.Fall < 1) {
			t.Errorf("upstream %q: bad health check %+v", name, hc)
		}
	}
	l := cfg.Limits
	if l.MaxRequestLine <= 0 || l.MaxRequestLine > l.MaxHeaderBytes || l.MaxHeaderFields <= 0 ||
		l.HeaderReadTimeout <= 0 || l.MaxRequestsPerConn <= 0 || l.MaxBodyBytes < 0 {
		t.Errorf("bad limits %+v", l)
	}
	if cfg.Log.Level == "" || cfg.Log.Format == "" || cfg.Log.Access == "" || cfg.Proxy.ForwardedHeaders == "" {
		t.Errorf("defaults missing: %+v %+v", cfg.Log, cfg.Proxy)
	}
}
