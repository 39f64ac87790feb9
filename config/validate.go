package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The checks below return "" when their input is valid and otherwise a
// message explaining what is wrong, for the caller to place.

// maxNameLen bounds listener, route and upstream names.
const maxNameLen = 128

// checkName checks the name of a listener, route or upstream: 1 to
// maxNameLen bytes of printable characters other than spaces.
func checkName(s string) string {
	switch {
	case s == "":
		return "names may not be empty"
	case len(s) > maxNameLen:
		return fmt.Sprintf("names may be at most %d bytes long", maxNameLen)
	case !utf8.ValidString(s):
		return "names must be valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return "names may not contain spaces or control characters"
		}
	}
	return ""
}

// isToken reports whether s is an RFC 9110 token, as header field names
// and methods are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// checkHeaderValue checks a header field value: no control characters
// other than tab, and no leading or trailing whitespace.
func checkHeaderValue(v string) string {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return "values may not contain control characters such as line breaks"
		}
	}
	if strings.TrimSpace(v) != v {
		return "values may not start or end with spaces or tabs"
	}
	return ""
}

// managedHeader explains why a route may not add or remove the header
// field name, or returns "" when it may. request says whether the field
// is on the request.
func managedHeader(name string, request bool) string {
	switch strings.ToLower(name) {
	case "host":
		if request {
			return "use set_host to change the Host header"
		}
	case "content-length", "transfer-encoding":
		return "Weir frames messages itself"
	case "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade":
		return "it is a hop-by-hop field, which Weir manages itself"
	}
	return ""
}

// checkPath checks a path to match or to request: it starts with "/" and
// holds no spaces, control characters, query or fragment.
func checkPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return `paths start with "/"`
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c <= ' ' || c == 0x7f:
			return "paths may not contain spaces or control characters (percent-encode them)"
		case c == '?' || c == '#':
			return "paths may not contain a query or fragment: only the path is matched"
		}
	}
	return ""
}

// checkHostname checks a DNS host name (an IPv4 address also passes):
// dot-separated labels of letters, digits, '-' and '_', at most 253
// bytes in all, with an optional final dot.
func checkHostname(h string) string {
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "missing host name"
	}
	if len(h) > 253 {
		return "host names may be at most 253 bytes long"
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" {
			return "host names may not contain empty labels (\"..\")"
		}
		if len(label) > 63 {
			return "each dot-separated part of a host name may be at most 63 bytes long"
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Sprintf("host names may only contain letters, digits, '-', '_' and '.', not %q", string(rune(c)))
			}
		}
	}
	return ""
}

// checkHost checks a host name or IP address (IPv6 without brackets).
func checkHost(h string) string {
	if _, err := netip.ParseAddr(h); err == nil {
		return ""
	}
	if strings.Contains(h, ":") {
		return "invalid IPv6 address"
	}
	return checkHostname(h)
}

// checkPort parses a port number from 1 to 65535.
func checkPort(p string) (int, string) {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || p[0] == '+' || p[0] == '-' {
		return 0, fmt.Sprintf("the port must be a number from 1 to 65535, not %q", clip(p))
	}
	return n, ""
}

// splitListenAddress checks a listener address "host:port" and returns its
// host in canonical form ("" for every interface, including 0.0.0.0 and
// ::) and its port, for comparing addresses.
func splitListenAddress(addr string) (host, port, msg string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if !errors.As(err, &ae) {
			return "", "", err.Error()
		}
		switch ae.Err {
		case "missing port in address":
			return "", "", "missing port"
		case "too many colons in address":
			return "", "", "too many colons (write IPv6 addresses in brackets, like [::1]:8080)"
		}
		return "", "", strings.TrimSuffix(ae.Err, " in address")
	}
	n, msg := checkPort(port)
	if msg != "" {
		return "", "", msg
	}
	if host != "" {
		if ip, err := netip.ParseAddr(host); err == nil {
			// Go listens on an IPv4-mapped address as on the IPv4 one.
			ip = ip.Unmap()
			host = ip.String()
			if ip.IsUnspecified() {
				host = ""
			}
		} else if msg := checkHost(host); msg != "" {
			return "", "", msg
		} else {
			host = strings.ToLower(strings.TrimSuffix(host, "."))
		}
	}
	return host, strconv.Itoa(n), ""
}

// checkAuthority checks a Host header value: a host name or IP address
// (IPv6 in brackets) with an optional port.
func checkAuthority(s string) string {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "missing ']'"
		}
		host, port = s[1:end], s[end+1:]
		if _, err := netip.ParseAddr(host); err != nil || !strings.Contains(host, ":") {
			return "invalid IPv6 address"
		}
		if port != "" {
			if !strings.HasPrefix(port, ":") {
				return "unexpected text after ']'"
			}
			port = port[1:]
		}
	} else {
		if i := strings.IndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
			if strings.Contains(port, ":") {
				return "write IPv6 addresses in brackets, like [::1]"
			}
			if port == "" {
				return "missing port after ':'"
			}
		}
		if msg := checkHostname(host); msg != "" {
			return msg
		}
	}
	if port != "" {
		if _, msg := checkPort(port); msg != "" {
			return msg
		}
	}
	return ""
}

// normaliseMatchHost checks a host of a route's match and returns it in
// lower case, without a final dot, IPv6 addresses in brackets.
func normaliseMatchHost(h string) (string, string) {
	h = strings.ToLower(h)
	switch {
	case h == "*":
		return "", `"*" would match every host; leave host out instead`
	case strings.HasPrefix(h, "*."):
		rest := strings.TrimSuffix(h[2:], ".")
		if strings.Contains(rest, "*") {
			return "", "a wildcard may only be the whole first label, like *.example.com"
		}
		if _, err := netip.ParseAddr(rest); err == nil {
			return "", "wildcards apply to host names, not IP addresses"
		}
		if msg := checkHostname(rest); msg != "" {
			return "", msg
		}
		return "*." + rest, ""
	case strings.Contains(h, "*"):
		return "", "a wildcard may only be the whole first label, like *.example.com"
	case strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]"):
		h = h[1 : len(h)-1]
		if ip, err := netip.ParseAddr(h); err == nil && ip.Is6() {
			return "[" + ip.String() + "]", ""
		}
		return "", "invalid IPv6 address"
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		if ip.Is6() {
			return "[" + ip.String() + "]", ""
		}
		return ip.String(), ""
	}
	if strings.Contains(h, ":") {
		return "", "hosts to match may not include a port: the port of the request's Host is ignored when matching"
	}
	if msg := checkHostname(h); msg != "" {
		return "", msg
	}
	return strings.TrimSuffix(h, "."), ""
}

// hashOnChoices are the fixed values of hash_on; header: and cookie: take
// a name.
var hashOnChoices = []string{"client_ip", "path"}

// checkHashOn checks a hash_on value. Unlike the other checks its message,
// when there is one, starts with its own separator ("; did you mean" or
// ": ...").
func checkHashOn(s string) string {
	if kind, name, ok := strings.Cut(s, ":"); ok {
		if kind == "header" || kind == "cookie" {
			switch {
			case name == "":
				return fmt.Sprintf(": name the %s, like %s:%s", kind, kind, map[string]string{"header": "X-User-Id", "cookie": "session"}[kind])
			case !isToken(name):
				return fmt.Sprintf(": %q is not a valid %s name", clip(name), kind)
			}
			return ""
		}
		if hint := suggest(kind, []string{"header", "cookie"}); hint != "" {
			return fmt.Sprintf("; did you mean %q?", hint+":"+name)
		}
	} else if slices.Contains(hashOnChoices, s) {
		return ""
	}
	if hint := didYouMean(s, hashOnChoices); hint != "" {
		return hint
	}
	return ": use client_ip, path, header:NAME or cookie:NAME"
}

// parsePeer checks a peer address, "SCHEME://host:port" or "host:port"
// (the scheme defaults to http, the port to 80, or 443 for https and
// h2), and returns its scheme and normalised "host:port".
func parsePeer(s string) (scheme, addr, msg string) {
	scheme, rest := "http", s
	if i := strings.Index(s, "://"); i >= 0 {
		scheme, rest = strings.ToLower(s[:i]), s[i+3:]
		if !slices.Contains(peerSchemes, scheme) {
			hint := didYouMean(scheme, peerSchemes)
			if hint == "" {
				hint = ": use http:// (HTTP/1.1), https:// (HTTP/1.1 over TLS), h2c:// (cleartext HTTP/2) or h2:// (HTTP/2 over TLS)"
			}
			return "", "", fmt.Sprintf("unknown scheme %q%s", clip(scheme), hint)
		}
	}
	defaultPort := "80"
	if scheme == "https" || scheme == "h2" {
		defaultPort = "443"
	}
	rest = strings.TrimSuffix(rest, "/")
	switch {
	case strings.ContainsAny(rest, "/?#"):
		return "", "", "a peer is " + scheme + "://host:port, without a path, query or fragment"
	case strings.Contains(rest, "@"):
		return "", "", "a peer address may not contain user information"
	}
	host, port := rest, defaultPort
	switch {
	case strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]"):
		host = rest[1 : len(rest)-1]
	case strings.HasPrefix(rest, "[") || strings.Count(rest, ":") == 1:
		var err error
		if host, port, err = net.SplitHostPort(rest); err != nil {
			var ae *net.AddrError
			if errors.As(err, &ae) {
				return "", "", strings.TrimSuffix(ae.Err, " in address")
			}
			return "", "", err.Error()
		}
	case strings.Contains(rest, ":"):
		return "", "", "write IPv6 addresses in brackets, like http://[::1]:8080"
	}
	if host == "" {
		return "", "", "missing host"
	}
	if msg := checkHost(host); msg != "" {
		return "", "", msg
	}
	n, msg := checkPort(port)
	if msg != "" {
		return "", "", msg
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.String()
	}
	return scheme, net.JoinHostPort(host, strconv.Itoa(n)), ""
}
