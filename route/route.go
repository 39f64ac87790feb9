// Package route is Weir's compiled route table: it matches a request head
// against host, path, method and header conditions, first match wins, in
// the order the routes were written. It dials nothing and knows nothing of
// upstreams: a route's value is whatever the caller stored in it.
package route

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/weirproxy/weir/message"
)

// Spec describes the conditions of one route. Empty conditions match all.
type Spec struct {
	// Hosts are exact host names or "*.example.com" wildcards, matched
	// case-insensitively against the request authority without its port.
	Hosts []string
	// Path matches the path (without query) exactly.
	Path string
	// PathPrefix matches when the path starts with it.
	PathPrefix string
	// PathRegex is an RE2 expression matched against the path.
	PathRegex string
	// Methods lists accepted methods (exact, upper case).
	Methods []string
	// Headers maps a field name to the exact value it must have; the
	// value "*" only requires the field to be present.
	Headers map[string]string
}

type hostPattern struct {
	name   string // lower case; for wildcards, the suffix including the dot
	suffix bool
}

type headerMatch struct {
	name, value string
	any         bool
}

type matcher struct {
	hosts      []hostPattern
	path       string
	pathPrefix string
	pathRegex  *regexp.Regexp
	methods    []string
	headers    []headerMatch
}

type entry[T any] struct {
	m matcher
	v T
}

// Table is an ordered list of routes. Build it with Add, then only read it
// (Match is safe for concurrent use).
type Table[T any] struct {
	entries []entry[T]
}

// Add compiles spec and appends a route carrying v.
func (t *Table[T]) Add(spec Spec, v T) error {
	var m matcher
	for _, h := range spec.Hosts {
		h = strings.ToLower(h)
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			m.hosts = append(m.hosts, hostPattern{name: "." + rest, suffix: true})
		} else {
			m.hosts = append(m.hosts, hostPattern{name: h})
		}
	}
	m.path, m.pathPrefix = spec.Path, spec.PathPrefix
	if spec.PathRegex != "" {
		re, err := regexp.Compile(spec.PathRegex)
		if err != nil {
			return fmt.Errorf("route: path_regex: %w", err)
		}
		m.pathRegex = re
	}
	m.methods = spec.Methods
	for name, v := range spec.Headers {
		m.headers = append(m.headers, headerMatch{name: name, value: v, any: v == "*"})
	}
	t.entries = append(t.entries, entry[T]{m: m, v: v})
	return nil
}

// Len returns the number of routes.
func (t *Table[T]) Len() int { return len(t.entries) }

// Match returns the value of the first route whose conditions all hold.
func (t *Table[T]) Match(req *message.Request) (v T, ok bool) {
	host := hostOnly(req.Authority)
	path := req.Path
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	for i := range t.entries {
		if t.entries[i].m.match(req, host, path) {
			return t.entries[i].v, true
		}
	}
	return v, false
}

func (m *matcher) match(req *message.Request, host, path []byte) bool {
	if len(m.hosts) > 0 && !m.matchHost(host) {
		return false
	}
	if m.path != "" && string(path) != m.path {
		return false
	}
	if m.pathPrefix != "" && !bytes.HasPrefix(path, message.S(m.pathPrefix)) {
		return false
	}
	if len(m.methods) > 0 {
		found := false
		for _, meth := range m.methods {
			if string(req.Method) == meth {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	for _, h := range m.headers {
		v := req.Header.Get(h.name)
		if v == nil || (!h.any && string(v) != h.value) {
			return false
		}
	}
	if m.pathRegex != nil && !m.pathRegex.Match(path) {
		return false
	}
	return true
}

func (m *matcher) matchHost(host []byte) bool {
	for _, p := range m.hosts {
		if p.suffix {
			if len(host) > len(p.name) && message.EqualFold(host[len(host)-len(p.name):], p.name) {
				return true
			}
		} else if message.EqualFold(host, p.name) {
			return true
		}
	}
	return false
}

// hostOnly strips the port from an authority ("h:80" → "h", "[::1]:80" → "[::1]").
func hostOnly(a []byte) []byte {
	if len(a) > 0 && a[0] == '[' {
		if i := bytes.IndexByte(a, ']'); i >= 0 {
			return a[:i+1]
		}
		return a
	}
	if i := bytes.LastIndexByte(a, ':'); i >= 0 {
		return a[:i]
	}
	return a
}
