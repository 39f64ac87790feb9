package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Snippets that the cases below extend. Each is valid on its own.
const (
	// listener is a valid listeners section.
	listener = "listeners:\n  - address: \":8080\"\n"
	// backend is a valid upstreams section; "    " indents more keys of
	// upstream app.
	backend = "upstreams:\n  app:\n    peers: [\"http://10.0.0.1:80\"]\n"
)

// errorCases maps a test name to a configuration and the errors it must
// produce, each in full: "FILE:LINE:COL: MSG". The file name is f.yaml.
var errorCases = []struct {
	name string
	src  string
	want []string
}{
	// YAML syntax errors: the position of the offending character.
	{"syntax/mapping value in scalar", "listeners: a: b\n",
		[]string{`f.yaml:1:13: mapping values are not allowed in this context`}},
	{"syntax/bad indentation", `
listeners:
  - address: ":80"
    name: x
   oops: y
`, []string{`f.yaml:5:8: did not find expected '-' indicator`}},
	{"syntax/tab indentation", "listeners:\n\t- address: \":80\"\n",
		[]string{`f.yaml:2:1: found character that cannot start any token`}},
	{"syntax/unclosed flow list", `
listeners:
  - address: ":80"
routes: [
  {upstream: a},
  {upstream: b}
  {upstream: c}
]
`, []string{`f.yaml:7:4: did not find expected ',' or ']'`}},
	{"syntax/extra bracket", "listeners: [{address: \":80\"}]]\n",
		[]string{`f.yaml:1:30: did not find expected key`}},
	{"syntax/unknown anchor", listener + "routes: *nope\n",
		[]string{`f.yaml:3:9: unknown anchor 'nope' referenced`}},
	{"syntax/bad escape", listener + "log: {access: \"a\\qb\"}\n",
		[]string{`f.yaml:3:18: found unknown escape character`}},
	{"syntax/second document", listener + "---\nroutes: []\n",
		[]string{`f.yaml:3:1: a second YAML document starts here; the configuration must be a single document`}},
	{"syntax/alias cycle", listener + "routes: &r [*r]\n",
		[]string{`f.yaml:3:13: alias *r refers to a node that contains it`}},

	// Unknown keys, with a suggestion when one is close.
	{"unknown/listener key", "listeners:\n  - adress: \":8080\"\n", []string{
		`f.yaml:2:5: unknown key "adress" in listener; did you mean "address"?`,
		`f.yaml:2:5: listener needs an address, like address: ":8080"`,
	}},
	{"unknown/top-level key", listener + "listners: []\n",
		[]string{`f.yaml:3:1: unknown top-level key "listners"; did you mean "listeners"?`}},
	{"unknown/top-level key without suggestion", listener + "frobnicate: 1\n",
		[]string{`f.yaml:3:1: unknown top-level key "frobnicate" (valid keys: forward_proxies, limits, listeners, log, metrics, proxy, routes, shutdown_grace, upstreams)`}},
	{"unknown/upstream key", listener + backend + "    balancr: p2c\n",
		[]string{`f.yaml:6:5: unknown key "balancr" in upstream "app"; did you mean "balancer"?`}},
	{"unknown/nested key", listener + backend + "    timeouts: {conect: 1s}\n",
		[]string{`f.yaml:6:16: unknown key "conect" in timeouts; did you mean "connect"?`}},
	{"unknown/match key", listener + backend + "routes:\n  - upstream: app\n    match: {path_prefx: /}\n",
		[]string{`f.yaml:8:13: unknown key "path_prefx" in match; did you mean "path_prefix"?`}},
	{"unknown/duplicate key", "listeners:\n  - address: \":80\"\n    address: \":81\"\n",
		[]string{`f.yaml:3:5: key "address" appears twice in listener (first at line 2)`}},

	// Wrong types.
	{"type/listeners not a list", "listeners: \":8080\"\n",
		[]string{`f.yaml:1:12: expected a list for listeners, got a string (":8080")`}},
	{"type/listener not a mapping", "listeners:\n  - \":8080\"\n",
		[]string{`f.yaml:2:5: expected a mapping for listener, got a string (":8080"); write - address: ":8080"`}},
	{"type/limits not a mapping", listener + "limits: [1, 2]\n",
		[]string{`f.yaml:3:9: expected a mapping for limits, got a list`}},
	{"type/peers not a list", listener + "upstreams:\n  app:\n    peers: {a: b}\n",
		[]string{`f.yaml:5:12: expected a list for peers, got a mapping`}},
	{"type/host is a mapping", listener + backend + "routes:\n  - upstream: app\n    match: {host: {a: b}}\n",
		[]string{`f.yaml:8:19: expected a list for host, got a mapping`}},
	{"type/retries not a number", listener + backend + "    retries: many\n",
		[]string{`f.yaml:6:14: expected a whole number for retries, got a string ("many")`}},
	{"type/fractional number", listener + backend + "    retries: 2.5\n",
		[]string{`f.yaml:6:14: expected a whole number for retries, got a number (2.5)`}},
	{"type/number for a list", "listeners: 8080\n",
		[]string{`f.yaml:1:12: expected a list for listeners, got a number (8080)`}},
	{"type/via not a boolean", listener + "proxy: {via: yes}\n",
		[]string{`f.yaml:3:14: expected true or false for proxy.via, got a string ("yes")`}},
	{"type/missing value", listener + "log: {level: }\n",
		[]string{`f.yaml:3:7: missing value for log.level: expected a string`}},
	{"type/upstreams is a list", listener + "upstreams: [a]\n",
		[]string{`f.yaml:3:12: expected a mapping from names to upstreams for upstreams, got a list`}},

	// Durations.
	{"duration/not go syntax", listener + backend + "    timeouts:\n      connect: 5 seconds\n",
		[]string{`f.yaml:7:16: invalid duration "5 seconds" for timeouts.connect: use Go syntax like 5s or 1m30s`}},
	{"duration/no unit", listener + "limits: {idle_timeout: 30}\n",
		[]string{`f.yaml:3:24: invalid duration "30" for limits.idle_timeout: use Go syntax like 5s or 1m30s`}},
	{"duration/negative", listener + "shutdown_grace: -5s\n",
		[]string{`f.yaml:3:17: shutdown_grace must not be negative, got -5s`}},
	{"duration/zero", listener + backend + "    passive_health: {eject_for: 0s}\n",
		[]string{`f.yaml:6:33: passive_health.eject_for must be greater than 0`}},

	// Sizes.
	{"size/unknown unit", listener + "limits: {max_header_bytes: 64k}\n",
		[]string{`f.yaml:3:28: invalid size "64k" for limits.max_header_bytes: unknown unit "k"; use B, KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000)`}},
	{"size/not a size", listener + "limits: {max_body_bytes: 1.5MiB}\n",
		[]string{`f.yaml:3:26: invalid size "1.5MiB" for limits.max_body_bytes: use a number of bytes or a unit, like 512B, 8KiB or 1MiB`}},
	{"size/negative", listener + "limits: {max_body_bytes: -1}\n",
		[]string{`f.yaml:3:26: limits.max_body_bytes must not be negative, got -1`}},
	{"size/zero", listener + "limits: {max_request_line: 0}\n",
		[]string{`f.yaml:3:28: limits.max_request_line must be at least 1, got 0`}},
	{"size/too large", listener + "limits: {max_body_bytes: 99999999999GiB}\n",
		[]string{`f.yaml:3:26: size "99999999999GiB" for limits.max_body_bytes is too large`}},
	{"size/request line above head", listener + "limits:\n  max_header_bytes: 4KiB\n  max_request_line: 8KiB\n",
		[]string{`f.yaml:5:21: limits.max_request_line (8192 bytes) may not exceed limits.max_header_bytes (4096 bytes), which includes the request line`}},
	{"count/not a size", listener + "limits: {max_header_fields: 1KiB}\n",
		[]string{`f.yaml:3:29: expected a whole number for limits.max_header_fields, got a string ("1KiB")`}},

	// Listener addresses.
	{"address/missing port", "listeners:\n  - address: 127.0.0.1\n",
		[]string{`f.yaml:2:14: invalid address "127.0.0.1" for listener: missing port`}},
	{"address/bad port", "listeners:\n  - address: \":http\"\n",
		[]string{`f.yaml:2:14: invalid address ":http" for listener: the port must be a number from 1 to 65535, not "http"`}},
	{"address/port out of range", "listeners:\n  - address: \":65536\"\n",
		[]string{`f.yaml:2:14: invalid address ":65536" for listener: the port must be a number from 1 to 65535, not "65536"`}},
	{"address/ipv6 without brackets", "listeners:\n  - address: \"::1:80\"\n",
		[]string{`f.yaml:2:14: invalid address "::1:80" for listener: too many colons (write IPv6 addresses in brackets, like [::1]:8080)`}},
	{"address/bad host", "listeners:\n  - address: \"my host:80\"\n",
		[]string{`f.yaml:2:14: invalid address "my host:80" for listener: host names may only contain letters, digits, '-', '_' and '.', not " "`}},
	{"address/duplicate", "listeners:\n  - address: \":8080\"\n  - address: \":8080\"\n",
		[]string{`f.yaml:3:14: listener address ":8080" is already used by listener "listener-1" (line 2)`}},
	{"address/overlap", "listeners:\n  - {name: all, address: \":8080\"}\n  - {name: lo, address: \"127.0.0.1:8080\"}\n",
		[]string{`f.yaml:3:25: listener address "127.0.0.1:8080" overlaps listener "all" (line 2): an empty host listens on every interface`}},
	{"listener/duplicate name", "listeners:\n  - {name: a, address: \":80\"}\n  - {name: a, address: \":81\"}\n",
		[]string{`f.yaml:3:12: listener name "a" is used twice (first at line 2)`}},

	// Missing required settings: at the position of the enclosing node.
	{"required/empty file", "",
		[]string{`f.yaml:1:1: the configuration is empty: at least one listener or forward proxy is required`}},
	{"required/no listeners", "\nlog: {level: warn}\n",
		[]string{`f.yaml:2:1: no listeners: at least one is required, like listeners: [{address: ":8080"}], unless forward_proxies lists a forward proxy`}},
	{"required/empty listeners", "listeners: []\n",
		[]string{`f.yaml:1:1: listeners is empty: at least one listener or forward proxy is required`}},
	{"required/route without upstream", listener + backend + "routes:\n  - name: api\n    match: {path: /}\n",
		[]string{`f.yaml:7:5: route "api" needs an upstream, like upstream: backend`}},
	{"required/upstream without peers", listener + "upstreams:\n  app:\n    balancer: p2c\n",
		[]string{`f.yaml:4:3: upstream "app" has no peers: list them under peers, like peers: ["http://10.0.0.1:8080"]`}},
	{"required/upstream with empty peers", listener + "upstreams:\n  app: {peers: []}\n",
		[]string{`f.yaml:4:3: upstream "app" has no peers: list them under peers, like peers: ["http://10.0.0.1:8080"]`}},
	{"required/peer without address", listener + "upstreams:\n  app:\n    peers:\n      - weight: 2\n",
		[]string{`f.yaml:6:9: peer needs an address, like address: "http://10.0.0.1:8080"`}},

	// Routes and their references.
	{"route/undefined upstream", listener + "upstreams:\n  api: {peers: [\"a:80\"]}\nroutes:\n  - name: api\n    upstream: apii\n", []string{
		`f.yaml:7:15: route "api" sends to upstream "apii", which is not defined; did you mean "api"?`,
	}},
	{"route/undefined upstream without suggestion", listener + backend + "routes:\n  - upstream: zzz\n",
		[]string{`f.yaml:7:15: route "route-1" sends to upstream "zzz", which is not defined`}},
	{"route/duplicate name", listener + backend + "routes:\n  - {name: r, upstream: app}\n  - {name: r, upstream: app}\n",
		[]string{`f.yaml:8:12: route name "r" is used twice (first at line 7)`}},
	{"route/bad regex", listener + backend + "routes:\n  - upstream: app\n    match:\n      path_regex: \"^/(api\"\n",
		[]string{`f.yaml:9:19: invalid path_regex "^/(api": missing closing ): "^/(api"`}},
	{"route/path without slash", listener + backend + "routes:\n  - upstream: app\n    match: {path_prefix: api}\n",
		[]string{`f.yaml:8:26: invalid path_prefix "api": paths start with "/"`}},
	{"route/path with query", listener + backend + "routes:\n  - upstream: app\n    match: {path: \"/a?b=1\"}\n",
		[]string{`f.yaml:8:19: invalid path "/a?b=1": paths may not contain a query or fragment: only the path is matched`}},
	{"route/host with port", listener + backend + "routes:\n  - upstream: app\n    match: {host: [ok.example, \"example.com:8080\"]}\n",
		[]string{`f.yaml:8:32: invalid host "example.com:8080": hosts to match may not include a port: the port of the request's Host is ignored when matching`}},
	{"route/bad wildcard", listener + backend + "routes:\n  - upstream: app\n    match: {host: \"api.*.com\"}\n",
		[]string{`f.yaml:8:19: invalid host "api.*.com": a wildcard may only be the whole first label, like *.example.com`}},
	{"route/bad method", listener + backend + "routes:\n  - upstream: app\n    match: {method: \"GET POST\"}\n",
		[]string{`f.yaml:8:21: invalid method "GET POST": methods are tokens, like GET or POST`}},
	{"route/bad header name", listener + backend + "routes:\n  - upstream: app\n    request_headers:\n      add: {\"X Bad\": 1}\n",
		[]string{`f.yaml:9:13: invalid header name "X Bad" in request_headers.add: names are tokens, like X-Request-Id`}},
	{"route/header value with newline", listener + backend + "routes:\n  - upstream: app\n    response_headers:\n      add: {X-A: \"a\\nb\"}\n",
		[]string{`f.yaml:9:18: invalid value for header "X-A" in response_headers.add: values may not contain control characters such as line breaks`}},
	{"route/framing header", listener + backend + "routes:\n  - upstream: app\n    request_headers:\n      add: {Content-Length: 0}\n",
		[]string{`f.yaml:9:29: request_headers.add cannot set "Content-Length": Weir frames messages itself`}},
	{"route/remove hop-by-hop", listener + backend + "routes:\n  - upstream: app\n    response_headers: {remove: [Server, Connection]}\n",
		[]string{`f.yaml:8:41: response_headers.remove cannot remove "Connection": it is a hop-by-hop field, which Weir manages itself`}},
	{"route/duplicate header", listener + backend + "routes:\n  - upstream: app\n    match:\n      headers: {X-A: 1, x-a: 2}\n",
		[]string{`f.yaml:9:25: header "x-a" appears twice in match.headers (as "X-A" at line 9); names ignore case`}},
	{"route/header match without value", listener + backend + "routes:\n  - upstream: app\n    match:\n      headers:\n        X-A:\n",
		[]string{`f.yaml:10:9: missing value for header "X-A" in match.headers: give the exact value, or "*" to require only that the header is present`}},
	{"route/bad set_host", listener + backend + "routes:\n  - upstream: app\n    set_host: \"a/b\"\n",
		[]string{`f.yaml:8:15: invalid set_host "a/b": host names may only contain letters, digits, '-', '_' and '.', not "/"`}},

	// Upstreams: balancers, hashing, peers.
	{"balancer/unknown with suggestion", listener + backend + "    balancer: roundrobin\n",
		[]string{`f.yaml:6:15: unknown balancer "roundrobin"; did you mean "round_robin"?`}},
	{"balancer/unknown", listener + backend + "    balancer: random\n",
		[]string{`f.yaml:6:15: unknown balancer "random": use "round_robin", "weighted_round_robin", "least_conn", "p2c" or "consistent_hash"`}},
	{"hash_on/missing", listener + backend + "    balancer: consistent_hash\n",
		[]string{`f.yaml:6:15: balancer consistent_hash needs hash_on: client_ip, path, header:NAME or cookie:NAME`}},
	{"hash_on/invalid", listener + backend + "    balancer: consistent_hash\n    hash_on: source\n",
		[]string{`f.yaml:7:14: invalid hash_on "source": use client_ip, path, header:NAME or cookie:NAME`}},
	{"hash_on/typo", listener + backend + "    balancer: consistent_hash\n    hash_on: clientip\n",
		[]string{`f.yaml:7:14: invalid hash_on "clientip"; did you mean "client_ip"?`}},
	{"hash_on/header without name", listener + backend + "    balancer: consistent_hash\n    hash_on: \"header:\"\n",
		[]string{`f.yaml:7:14: invalid hash_on "header:": name the header, like header:X-User-Id`}},
	{"hash_on/without consistent_hash", listener + backend + "    hash_on: path\n",
		[]string{`f.yaml:6:14: hash_on is only used by balancer consistent_hash, not round_robin`}},
	{"peer/weight too large", listener + "upstreams:\n  app:\n    peers:\n      - {address: \"a:80\", weight: 1001}\n",
		[]string{`f.yaml:6:35: weight must be from 1 to 1000, got 1001`}},
	{"peer/weight zero", listener + "upstreams:\n  app:\n    peers:\n      - {address: \"a:80\", weight: 0}\n",
		[]string{`f.yaml:6:35: weight must be from 1 to 1000, got 0`}},
	{"peer/unknown scheme", listener + "upstreams:\n  app:\n    peers: [\"htps://a:443\"]\n",
		[]string{`f.yaml:5:13: invalid peer "htps://a:443" in upstream "app": unknown scheme "htps"; did you mean "https"?`}},
	{"peer/grpc scheme", listener + "upstreams:\n  app:\n    peers: [\"grpc://a:443\"]\n",
		[]string{`f.yaml:5:13: invalid peer "grpc://a:443" in upstream "app": unknown scheme "grpc": use http:// (HTTP/1.1), https:// (HTTP/1.1 over TLS), h2c:// (cleartext HTTP/2) or h2:// (HTTP/2 over TLS)`}},
	{"peer/path", listener + "upstreams:\n  app:\n    peers: [\"http://a:80/api\"]\n",
		[]string{`f.yaml:5:13: invalid peer "http://a:80/api" in upstream "app": a peer is http://host:port, without a path, query or fragment`}},
	{"peer/duplicate", listener + "upstreams:\n  app:\n    peers: [\"a:80\", \"http://A:80\"]\n",
		[]string{`f.yaml:5:21: peer "http://A:80" appears twice in upstream "app" (first at line 5); to send it more requests, give it a weight`}},
	{"upstream/bad name", listener + "upstreams:\n  \"my app\": {peers: [\"a:80\"]}\n",
		[]string{`f.yaml:4:3: invalid upstream name "my app": names may not contain spaces or control characters`}},
	{"keepalive/max_idle above max_per_peer", listener + backend + "    keepalive: {max_idle: 10, max_per_peer: 5}\n",
		[]string{`f.yaml:6:27: keepalive.max_idle (10) may not exceed keepalive.max_per_peer (5)`}},
	{"retries/negative", listener + backend + "    retries: -1\n",
		[]string{`f.yaml:6:14: retries must not be negative, got -1`}},

	// Health checks.
	{"health/timeout above interval", listener + backend + "    health_check: {interval: 1s, timeout: 2s}\n",
		[]string{`f.yaml:6:43: health_check.timeout (2s) may not exceed health_check.interval (1s)`}},
	{"health/tcp with path", listener + backend + "    health_check:\n      type: tcp\n      path: /health\n",
		[]string{`f.yaml:8:7: health_check.path is only used by http health checks, and this one is tcp`}},
	{"health/bad status", listener + backend + "    health_check: {expect_status: [200, 700]}\n",
		[]string{`f.yaml:6:41: health_check.expect_status must be from 100 to 599, got 700`}},
	{"health/unknown type", listener + backend + "    health_check: {type: htpt}\n",
		[]string{`f.yaml:6:26: unknown health_check.type "htpt"; did you mean "http"?`}},
	{"health/zero rise", listener + backend + "    health_check: {rise: 0}\n",
		[]string{`f.yaml:6:26: health_check.rise must be at least 1, got 0`}},

	// Proxy and log.
	{"proxy/forwarded_headers", listener + "proxy: {forwarded_headers: x-forwarded-for}\n",
		[]string{`f.yaml:3:28: unknown proxy.forwarded_headers "x-forwarded-for": use "x-forwarded", "forwarded", "both" or "none"`}},
	{"log/level", listener + "log: {level: warning}\n",
		[]string{`f.yaml:3:14: unknown log.level "warning": use "info", "debug", "warn" or "error"`}},
	{"log/format", listener + "log: {format: xml}\n",
		[]string{`f.yaml:3:15: unknown log.format "xml": use "text" or "json"`}},
}

func TestErrors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("f.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("Parse succeeded, want errors:\n%s", strings.Join(tc.want, "\n"))
			}
			if cfg != nil {
				t.Errorf("Parse returned a config with its errors")
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want ErrorList", err)
			}
			var got []string
			for _, e := range list {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("source:\n%s\ngot:\n%s\nwant:\n%s", tc.src, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestSyntaxErrorColumns checks the position found for syntax errors in
// more shapes than the cases above, including ones where the YAML library
// reports a line counted from 0, or no line at all.
func TestSyntaxErrorColumns(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want string // LINE:COL
	}{
		{"a: b: c\n", "1:5"},                                             // no line in the library's message
		{"a: b\n  c: d\n", "2:4"},                                        // the ':' that is not allowed
		{"a:\n  b: c\n d: e\n", "3:3"},                                   // library says line 2
		{"a: b\n- c\n", "2:1"},                                           // library says line 1
		{"a: \"x\"\nb: 'unterminated\n", "2:4"},                          // the quote that is never closed
		{"a: b\nc: [1\nd: e: f\n", "3:4"},                                // the library notices at "e"
		{"a: b\r\nc: [1\r\nd: e: f\r\n", "3:4"},                          // CR LF line breaks
		{"a: b\rc: [1\rd: e: f\r", "3:4"},                                // CR line breaks
		{"a: b\u2028c: [1\u2028d: e: f\u2028", "3:4"},                    // Unicode line separators
		{"k: é\ncafé: x: y\n", "2:8"},                                    // columns count characters, not bytes
		{"k: v\n" + strings.Repeat("x: y\n", 3000) + "z: [\n", "3002:4"}, // long input
	} {
		_, err := Parse("f.yaml", []byte(tc.src))
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%q: error %v, want a syntax error", tc.src, err)
			continue
		}
		if got := strings.TrimPrefix(e.Error(), "f.yaml:"); !strings.HasPrefix(got, tc.want+":") {
			t.Errorf("%q: got %s, want position %s", tc.src, e, tc.want)
		}
	}
}

func TestTooManyPeers(t *testing.T) {
	var b strings.Builder
	b.WriteString("listeners: [{address: \":8080\"}]\nroutes: [{upstream: app}]\nupstreams:\n  app:\n    peers:\n")
	for i := range MaxPeers + 1 {
		fmt.Fprintf(&b, "      - http://127.0.0.1:%d\n", 10000+i)
	}
	_, err := Parse("f.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "f.yaml:5:5: upstream \"app\" has 65 peers; at most 64") {
		t.Fatalf("got %v", err)
	}
}
