package forward

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/weirproxy/weir/resolver"
)

// DNSOptions configure the caching resolver (package resolver) a Server
// builds when Options.Resolver is nil. Answers are cached for their TTL,
// names that do not exist too, and concurrent lookups of one name share
// one query. The hosts file (/etc/hosts) is consulted first, and
// "localhost" is always the loopback addresses.
type DNSOptions struct {
	// Servers are nameservers, as "ip" or "ip:port" ("[ipv6]:port"),
	// asked in order over UDP, and over TCP when an answer is truncated.
	// Empty means the nameservers of ResolvConf; when that lists none,
	// the system's resolver (Go's net.Resolver) is asked instead.
	Servers []string

	// DoH is a DNS-over-HTTPS URL (RFC 8484), such as
	// "https://dns.example/dns-query", asked instead of nameservers.
	// Not with Servers. The DoH server is the operator's choice: it is
	// reached directly, without the destination policy.
	DoH string
	// DoHClient is the HTTP client DoH queries go through (nil: one of
	// the Server's own, which ignores proxy environment variables).
	DoHClient *http.Client

	// ResolvConf is the file whose "nameserver" lines are used when
	// Servers and DoH are empty (default "/etc/resolv.conf").
	ResolvConf string
}

// dohTimeout bounds one DNS-over-HTTPS exchange of the Server's own
// client; the resolver's lookup timeout bounds each query as well.
const dohTimeout = 10 * time.Second

// newResolver builds the caching resolver DNS describes, and says which
// backend it asks, for the start log.
func newResolver(o DNSOptions) (*resolver.Resolver, string, error) {
	var backend resolver.Backend
	var what string
	switch {
	case o.DoH != "" && len(o.Servers) > 0:
		return nil, "", errors.New("DNS: nameservers and DNS over HTTPS cannot be used together")
	case o.DoH != "":
		client := o.DoHClient
		if client == nil {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.Proxy = nil
			client = &http.Client{Transport: tr, Timeout: dohTimeout}
		}
		doh, err := resolver.NewDoH(o.DoH, client)
		if err != nil {
			return nil, "", fmt.Errorf("DNS over HTTPS: %w", err)
		}
		backend, what = doh, "doh "+o.DoH
	case len(o.Servers) > 0:
		c, err := resolver.NewDNSClient(resolver.DNSConfig{Servers: o.Servers})
		if err != nil {
			return nil, "", err
		}
		backend, what = c, "dns "+strings.Join(c.Servers(), ",")
	default:
		path := o.ResolvConf
		if path == "" {
			path = resolver.DefaultResolvConf
		}
		if !hasNameserver(path) {
			backend, what = &resolver.System{}, "system"
			break
		}
		c, err := resolver.NewDNSClient(resolver.DNSConfig{ResolvConf: path})
		if err != nil {
			return nil, "", err
		}
		backend, what = c, "dns "+strings.Join(c.Servers(), ",")
	}
	r, err := resolver.New(resolver.Config{Backend: backend})
	if err != nil {
		return nil, "", err
	}
	return r, what, nil
}

// hasNameserver reports whether a resolv.conf file names at least one
// nameserver by IP address, as package resolver reads it.
func hasNameserver(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, resolver.MaxResolvConfSize))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == "nameserver" {
			if _, err := netip.ParseAddr(fields[1]); err == nil {
				return true
			}
		}
	}
	return false
}
