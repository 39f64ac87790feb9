package weir

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/weirproxy/weir/config"
)

// QuickReverseProxy is what `weir reverse-proxy` runs: one listener, one
// catch-all route, one upstream group of the given URLs. It is built as a
// configuration and validated like a file, so the quick mode and the file
// mode share every default and every check.
type QuickReverseProxy struct {
	From      string   // listen address, "host:port" or ":port"
	To        []string // upstream URLs: http://, https://, h2c:// or h2:// (a bare host:port is http://)
	LB        string   // balancer name; empty: round_robin
	AccessLog string   // stdout, stderr, off or a file path; empty: stdout
	LogFormat string   // text or json; empty: text

	// TLSCert and TLSKey are PEM files that make the listener terminate
	// TLS, offering HTTP/2 and HTTP/1.1 (both or neither).
	TLSCert, TLSKey string
	// HTTP3 also serves HTTP/3 over QUIC on the UDP port of the same
	// number. It needs TLSCert and TLSKey.
	HTTP3 bool
	// H2C accepts cleartext HTTP/2 with prior knowledge on a listener
	// without TLS.
	H2C bool
	// UpstreamCA is a PEM file of the CAs that https:// and h2:// upstreams'
	// certificates must chain to (empty: the system roots).
	UpstreamCA string
	// UpstreamInsecure turns off certificate verification toward https://
	// and h2:// upstreams. For tests only.
	UpstreamInsecure bool
	// Metrics serves Prometheus metrics at /metrics on this "host:port"
	// (empty: no metrics).
	Metrics string
}

// Config builds and validates the configuration.
func (q QuickReverseProxy) Config() (*config.Config, error) {
	if q.From == "" {
		return nil, fmt.Errorf("--from is required: the address to listen on, like :8080 or 127.0.0.1:8080")
	}
	from := q.From
	if !strings.Contains(from, ":") {
		from = ":" + from
	}
	if _, _, err := net.SplitHostPort(from); err != nil {
		return nil, fmt.Errorf("--from %q: %v", q.From, err)
	}
	if len(q.To) == 0 {
		return nil, fmt.Errorf("--to is required: at least one upstream URL, like http://127.0.0.1:9000")
	}
	tlsOn := q.TLSCert != "" || q.TLSKey != ""
	switch {
	case q.TLSCert == "" && q.TLSKey != "":
		return nil, fmt.Errorf("--tls-key needs --tls-cert: the certificate file that goes with the key")
	case q.TLSCert != "" && q.TLSKey == "":
		return nil, fmt.Errorf("--tls-cert needs --tls-key: the private key file of the certificate")
	case q.HTTP3 && !tlsOn:
		return nil, fmt.Errorf("--http3 needs --tls-cert and --tls-key: HTTP/3 always runs over TLS")
	case q.H2C && tlsOn:
		return nil, fmt.Errorf("--h2c is for listeners without TLS: with --tls-cert, clients already get HTTP/2 over TLS")
	case q.UpstreamCA != "" && q.UpstreamInsecure:
		return nil, fmt.Errorf("--upstream-insecure turns off the verification --upstream-ca is for; use one of them")
	}

	var b strings.Builder
	fmt.Fprintf(&b, "listeners:\n  - address: %s\n", strconv.Quote(from))
	if tlsOn {
		fmt.Fprintf(&b, "    tls:\n      certificates:\n        - cert: %s\n          key: %s\n", strconv.Quote(q.TLSCert), strconv.Quote(q.TLSKey))
	}
	if q.HTTP3 {
		b.WriteString("    http3: {enabled: true}\n")
	}
	if q.H2C {
		b.WriteString("    http2: {h2c: true}\n")
	}
	b.WriteString("routes:\n  - name: default\n    upstream: default\n")
	b.WriteString("upstreams:\n  default:\n")
	if q.LB != "" {
		fmt.Fprintf(&b, "    balancer: %s\n", strconv.Quote(q.LB))
		if q.LB == "consistent_hash" {
			b.WriteString("    hash_on: client_ip\n")
		}
	}
	b.WriteString("    peers:\n")
	var scheme, first string
	for _, t := range q.To {
		u := t
		if !strings.Contains(u, "://") {
			u = "http://" + u
		}
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" {
			return nil, fmt.Errorf("--to %q: not a URL like http://127.0.0.1:9000", t)
		}
		if pu.Path != "" && pu.Path != "/" {
			return nil, fmt.Errorf("--to %q: upstream URLs cannot carry a path yet", t)
		}
		switch s := strings.ToLower(pu.Scheme); {
		case s != "http" && s != "https" && s != "h2c" && s != "h2":
			return nil, fmt.Errorf("--to %q: unknown scheme %q; use http:// (HTTP/1.1), https:// (HTTP/1.1 over TLS), h2c:// (cleartext HTTP/2) or h2:// (HTTP/2 over TLS)", t, pu.Scheme)
		case scheme == "":
			scheme, first = s, t
		case s != scheme:
			return nil, fmt.Errorf("--to %q uses %s://, but --to %q uses %s://: all upstreams must speak the same protocol", t, s, first, scheme)
		}
		fmt.Fprintf(&b, "      - %s\n", strconv.Quote(pu.Scheme+"://"+pu.Host))
	}
	if q.UpstreamCA != "" || q.UpstreamInsecure {
		flag := "--upstream-ca"
		if q.UpstreamInsecure {
			flag = "--upstream-insecure"
		}
		if scheme != "https" && scheme != "h2" {
			return nil, fmt.Errorf("%s applies to https:// and h2:// upstreams, and --to %q is %s://", flag, first, scheme)
		}
		b.WriteString("    tls:\n")
		if q.UpstreamCA != "" {
			fmt.Fprintf(&b, "      ca: %s\n", strconv.Quote(q.UpstreamCA))
		}
		if q.UpstreamInsecure {
			b.WriteString("      insecure_skip_verify: true\n")
		}
	}
	if q.AccessLog != "" || q.LogFormat != "" {
		b.WriteString("log:\n")
		if q.AccessLog != "" {
			fmt.Fprintf(&b, "  access: %s\n", strconv.Quote(q.AccessLog))
		}
		if q.LogFormat != "" {
			fmt.Fprintf(&b, "  format: %s\n", strconv.Quote(q.LogFormat))
		}
	}
	if m := q.Metrics; m != "" {
		if !strings.Contains(m, ":") {
			m = ":" + m
		}
		fmt.Fprintf(&b, "metrics:\n  address: %s\n", strconv.Quote(m))
	}
	cfg, err := config.Parse("reverse-proxy flags", []byte(b.String()))
	if err != nil {
		return nil, quickError(err)
	}
	return cfg, nil
}

// linesRE matches the line numbers some messages point at.
var linesRE = regexp.MustCompile(` \(line \d+\)`)

// quickError drops the synthetic file positions, which mean nothing to
// someone who typed flags.
func quickError(err error) error {
	if l, ok := err.(config.ErrorList); ok {
		msgs := make([]string, len(l))
		for i, e := range l {
			msgs[i] = linesRE.ReplaceAllString(e.Msg, "")
		}
		return fmt.Errorf("%s", strings.Join(msgs, "\n"))
	}
	return err
}
