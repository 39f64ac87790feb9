package config

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/limits"
	"go.yaml.in/yaml/v3"
)

// These tests keep docs/config.md and examples/full.yaml in step with the
// parser: every key the parser accepts is documented in the right table
// and used in the full example, the documented defaults match package
// limits, and the example at the top of the page is valid.

var (
	docsPath        = filepath.Join("..", "docs", "config.md")
	fullExamplePath = filepath.Join("..", "examples", "full.yaml")
)

// sections lists each mapping of the schema: the heading of its table in
// docs/config.md, and a configuration with the key "zzzz_probe" inserted
// in that mapping, from whose error message the test reads the valid keys.
var sections = []struct {
	heading, probe string
}{
	{"## Top level", listener + "zzzz_probe: 1\n"},
	{"## `listeners`", "listeners:\n  - {address: \":1\", zzzz_probe: 1}\n"},
	{"### `tls`", "listeners:\n  - {address: \":1\", tls: {" + acmeProbe + ", zzzz_probe: 1}}\n"},
	{"#### `certificates`", "listeners:\n  - {address: \":1\", tls: {certificates: [{zzzz_probe: 1}]}}\n"},
	{"#### `acme`", "listeners:\n  - {address: \":1\", tls: {acme: {zzzz_probe: 1}}}\n"},
	{"### `http2`", "listeners:\n  - {address: \":1\", http2: {h2c: true, zzzz_probe: 1}}\n"},
	{"### `http3`", "listeners:\n  - {address: \":1\", http3: {zzzz_probe: 1}}\n"},
	{"## `routes`", listener + backend + "routes:\n  - {upstream: app, zzzz_probe: 1}\n"},
	{"### `match`", listener + backend + "routes:\n  - {upstream: app, match: {zzzz_probe: 1}}\n"},
	{"### `request_headers` and `response_headers`", listener + backend + "routes:\n  - {upstream: app, request_headers: {zzzz_probe: 1}}\n"},
	{"## `upstreams`", listener + backend + "    zzzz_probe: 1\n"},
	{"### Upstream `tls`", listener + "upstreams:\n  app: {peers: [\"https://a:1\"], tls: {zzzz_probe: 1}}\n"},
	{"### `peers`", listener + "upstreams:\n  app: {peers: [{address: \"a:1\", zzzz_probe: 1}]}\n"},
	{"### `keepalive`", listener + backend + "    keepalive: {zzzz_probe: 1}\n"},
	{"### `timeouts`", listener + backend + "    timeouts: {zzzz_probe: 1}\n"},
	{"### `health_check`", listener + backend + "    health_check: {zzzz_probe: 1}\n"},
	{"### `passive_health`", listener + backend + "    passive_health: {zzzz_probe: 1}\n"},
	{"## `limits`", listener + "limits: {zzzz_probe: 1}\n"},
	{"## `proxy`", listener + "proxy: {zzzz_probe: 1}\n"},
	{"## `log`", listener + "log: {zzzz_probe: 1}\n"},
	{"## `metrics`", listener + "metrics: {address: \"127.0.0.1:9090\", zzzz_probe: 1}\n"},
	{"## `forward_proxies`", forwardProxy + ", zzzz_probe: 1}\n"},
	{"### `policy`", forwardProxy + ", policy: {zzzz_probe: 1}}\n"},
	{"### `sources`", forwardProxy + ", sources: {addresses: [127.0.0.2], zzzz_probe: 1}}\n"},
	{"### Forward proxy `timeouts`", forwardProxy + ", timeouts: {zzzz_probe: 1}}\n"},
	{"### Forward proxy `keepalive`", forwardProxy + ", keepalive: {zzzz_probe: 1}}\n"},
	{"### `dns`", forwardProxy + ", dns: {zzzz_probe: 1}}\n"},
	{"### Forward proxy `tls`", forwardProxy + ", tls: {zzzz_probe: 1}}\n"},
	{"### Forward proxy `http3`", forwardProxy + ", http3: {zzzz_probe: 1}}\n"},
	{"### `user_limits`", forwardProxy + ", user_limits: {zzzz_probe: 1}}\n"},
}

// forwardProxy starts a valid forward proxy, written in flow style and
// left open for more keys.
const forwardProxy = "forward_proxies:\n  - {address: \"127.0.0.1:1\""

// acmeProbe is a valid tls.acme setting, for probing the other keys of
// tls without certificate files.
const acmeProbe = "acme: {domains: [example.com], storage: /var/lib/weir, agree: true}"

var validKeysRE = regexp.MustCompile(`unknown (?:top-level )?key "zzzz_probe".*\(valid keys: ([a-z0-9_, ]+)\)$`)

// schemaKeys returns the keys the parser accepts in the mapping of probe.
// Other errors (missing required keys) may come with the unknown-key one.
func schemaKeys(t *testing.T, probe string) []string {
	t.Helper()
	_, err := Parse("probe.yaml", []byte(probe))
	var list ErrorList
	if err == nil || !errorsAs(err, &list) {
		t.Fatalf("probe %q: got %v, want an unknown-key error", probe, err)
	}
	for _, e := range list {
		if m := validKeysRE.FindStringSubmatch(e.Msg); m != nil {
			return strings.Split(m[1], ", ")
		}
	}
	t.Fatalf("probe %q: no key list in %v", probe, err)
	return nil
}

func errorsAs(err error, list *ErrorList) bool {
	l, ok := err.(ErrorList)
	*list = l
	return ok
}

// docSection returns the text under heading, up to the next heading.
func docSection(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("docs/config.md has no heading %q", heading)
	}
	rest := doc[i+len(heading)+2:]
	if j := regexp.MustCompile(`(?m)^##`).FindStringIndex(rest); j != nil {
		rest = rest[:j[0]]
	}
	return rest
}

var tableKeyRE = regexp.MustCompile("(?m)^\\| `([a-z0-9_*-]+)` \\|")

func TestDocsListEveryKey(t *testing.T) {
	doc := readFile(t, docsPath)
	full := readFile(t, fullExamplePath)
	for _, s := range sections {
		keys := schemaKeys(t, s.probe)
		var documented []string
		for _, m := range tableKeyRE.FindAllStringSubmatch(docSection(t, doc, s.heading), -1) {
			if m[1] != "x-*" {
				documented = append(documented, m[1])
			}
		}
		slices.Sort(documented)
		if !slices.Equal(documented, keys) {
			t.Errorf("docs/config.md, %s: the table lists %v; the parser accepts %v", s.heading, documented, keys)
		}
		for _, k := range keys {
			if !regexp.MustCompile(`(?m)(^|[\s{,])` + k + `:`).MatchString(full) {
				t.Errorf("examples/full.yaml does not use %s key %q", s.heading, k)
			}
		}
	}
}

// limitConstants are the constants of package limits that docs/config.md
// quotes as defaults.
var limitConstants = map[string]any{
	"MaxRequestLine":         limits.MaxRequestLine,
	"MaxHeaderBytes":         limits.MaxHeaderBytes,
	"MaxHeaderFields":        limits.MaxHeaderFields,
	"HeaderReadTimeout":      limits.HeaderReadTimeout,
	"IdleTimeout":            limits.IdleTimeout,
	"BodyReadTimeout":        limits.BodyReadTimeout,
	"WriteTimeout":           limits.WriteTimeout,
	"MaxRequestsPerConn":     limits.MaxRequestsPerConn,
	"MaxBodyBytes":           limits.MaxBodyBytes,
	"MaxChunkLine":           limits.MaxChunkLine,
	"MaxTrailerBytes":        limits.MaxTrailerBytes,
	"MaxConnections":         limits.MaxConnections,
	"ShutdownGrace":          limits.ShutdownGrace,
	"ConnectTimeout":         limits.ConnectTimeout,
	"ResponseHeaderTimeout":  limits.ResponseHeaderTimeout,
	"UpstreamIdleTimeout":    limits.UpstreamIdleTimeout,
	"RequestTimeout":         time.Duration(limits.RequestTimeout),
	"PoolMaxIdlePerPeer":     limits.PoolMaxIdlePerPeer,
	"PoolMaxPerPeer":         limits.PoolMaxPerPeer,
	"PoolIdleTimeout":        limits.PoolIdleTimeout,
	"MaxRetries":             limits.MaxRetries,
	"MaxResponseHeaderBytes": limits.MaxResponseHeaderBytes,
	"HealthInterval":         limits.HealthInterval,
	"HealthTimeout":          limits.HealthTimeout,
	"HealthRise":             limits.HealthRise,
	"HealthFall":             limits.HealthFall,
	"PassiveMaxFails":        limits.PassiveMaxFails,
	"PassiveEjectFor":        limits.PassiveEjectFor,
	"H2MaxConcurrentStreams": limits.H2MaxConcurrentStreams,
	"H2StreamWindow":         limits.H2StreamWindow,
	"H2ConnWindow":           limits.H2ConnWindow,
	"H2MaxFrameSize":         limits.H2MaxFrameSize,
	"H2GlitchBudget":         limits.H2GlitchBudget,
	"H2GlitchRate":           limits.H2GlitchRate,
}

// defaultRE matches a documented default: "`VALUE` (`limits.NAME`)".
var defaultRE = regexp.MustCompile("`([^`]+)` \\(`limits\\.([A-Za-z0-9]+)`\\)")

func TestDocsDefaultsMatchLimits(t *testing.T) {
	doc := readFile(t, docsPath)
	quoted := make(map[string]bool)
	for _, m := range defaultRE.FindAllStringSubmatch(doc, -1) {
		value, name := m[1], m[2]
		want, ok := limitConstants[name]
		if !ok {
			t.Errorf("docs/config.md quotes limits.%s, which this test does not know", name)
			continue
		}
		quoted[name] = true
		switch want := want.(type) {
		case time.Duration:
			got, err := time.ParseDuration(value)
			if err != nil || got != want {
				t.Errorf("docs/config.md: default of limits.%s is written %q; limits.go says %v", name, value, want)
			}
		case int:
			d := &decoder{seen: make(map[Error]bool)}
			got, ok := d.size(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}, name, 0)
			if !ok || got != int64(want) {
				t.Errorf("docs/config.md: default of limits.%s is written %q; limits.go says %d", name, value, want)
			}
		default:
			t.Fatalf("limits.%s has unexpected type %T", name, want)
		}
	}
	for name := range limitConstants {
		if !quoted[name] {
			t.Errorf("docs/config.md does not quote the default limits.%s", name)
		}
	}
}

func TestDocsExampleIsValid(t *testing.T) {
	doc := readFile(t, docsPath)
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(doc)
	if m == nil {
		t.Fatal("docs/config.md has no yaml example")
	}
	if _, err := Parse("docs/config.md example", []byte(m[1])); err != nil {
		t.Errorf("the example at the top of docs/config.md is invalid:\n%v", err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// forwardDefaults are the defaults of the forward proxy tables, which
// come from the constants of this package rather than from package limits.
var forwardDefaults = []struct {
	heading, key string
	want         any
}{
	{"### `policy`", "connect_ports", DefaultForwardConnectPort},
	{"### `sources`", "sticky_ttl", DefaultStickyTTL},
	{"### `sources`", "max_sessions", DefaultMaxStickySessions},
	{"### Forward proxy `timeouts`", "handshake", DefaultForwardHandshakeTimeout},
	{"### Forward proxy `timeouts`", "connect", DefaultForwardConnectTimeout},
	{"### Forward proxy `timeouts`", "tunnel_idle", DefaultForwardTunnelIdleTimeout},
	{"### Forward proxy `timeouts`", "udp_idle", DefaultForwardUDPIdleTimeout},
	{"### Forward proxy `keepalive`", "max_destinations", DefaultForwardMaxDestinations},
	{"### Forward proxy `keepalive`", "max_idle", DefaultForwardMaxIdle},
	{"### Forward proxy `keepalive`", "idle_timeout", DefaultForwardDestinationIdle},
}

func TestDocsForwardDefaults(t *testing.T) {
	doc := readFile(t, docsPath)
	for _, c := range forwardDefaults {
		row := regexp.MustCompile("(?m)^\\| `" + c.key + "` \\| [^|]* \\| `([^`]+)` \\|").FindStringSubmatch(docSection(t, doc, c.heading))
		if row == nil {
			t.Errorf("docs/config.md, %s: no default for %s", c.heading, c.key)
			continue
		}
		var ok bool
		switch want := c.want.(type) {
		case time.Duration:
			got, err := time.ParseDuration(row[1])
			ok = err == nil && got == want
		case int:
			ok = row[1] == strconv.Itoa(want)
		}
		if !ok {
			t.Errorf("docs/config.md, %s: the default of %s is written %q; the code says %v", c.heading, c.key, row[1], c.want)
		}
	}
}
