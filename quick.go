package weir

import (
	"fmt"
	"net"
	"net/url"
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
	To        []string // upstream URLs, "http://host:port" (or "host:port")
	LB        string   // balancer name; empty: round_robin
	AccessLog string   // stdout, stderr, off or a file path; empty: stdout
	LogFormat string   // text or json; empty: text
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
	var b strings.Builder
	fmt.Fprintf(&b, "listeners:\n  - address: %s\n", strconv.Quote(from))
	b.WriteString("routes:\n  - name: default\n    upstream: default\n")
	b.WriteString("upstreams:\n  default:\n")
	if q.LB != "" {
		fmt.Fprintf(&b, "    balancer: %s\n", strconv.Quote(q.LB))
		if q.LB == "consistent_hash" {
			b.WriteString("    hash_on: client_ip\n")
		}
	}
	b.WriteString("    peers:\n")
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
		fmt.Fprintf(&b, "      - %s\n", strconv.Quote(pu.Scheme+"://"+pu.Host))
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
	cfg, err := config.Parse("reverse-proxy flags", []byte(b.String()))
	if err != nil {
		return nil, quickError(err)
	}
	return cfg, nil
}

// quickError drops the synthetic file positions, which mean nothing to
// someone who typed flags.
func quickError(err error) error {
	if l, ok := err.(config.ErrorList); ok {
		msgs := make([]string, len(l))
		for i, e := range l {
			msgs[i] = e.Msg
		}
		return fmt.Errorf("%s", strings.Join(msgs, "\n"))
	}
	return err
}
