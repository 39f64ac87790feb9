package config

import (
	"errors"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestMetricsConfigOffByDefault(t *testing.T) {
	if cfg := mustParse(t, minimal); cfg.Metrics != nil {
		t.Errorf("Metrics = %+v without the key, want nil", cfg.Metrics)
	}
}

func TestMetricsConfigDefaults(t *testing.T) {
	cfg := mustParse(t, listener+"metrics: {address: \"127.0.0.1:9090\"}\n")
	want := &Metrics{Address: "127.0.0.1:9090", Path: "/metrics", MaxForwardUsers: 1000}
	if !reflect.DeepEqual(cfg.Metrics, want) {
		t.Errorf("Metrics = %+v, want %+v", cfg.Metrics, want)
	}
	cfg = mustParse(t, listener+"metrics:\n  address: \":9100\"\n  path: /internal/metrics\n  max_forward_users: 50\n  pprof: true\n")
	want = &Metrics{Address: ":9100", Path: "/internal/metrics", MaxForwardUsers: 50, Pprof: true}
	if !reflect.DeepEqual(cfg.Metrics, want) {
		t.Errorf("Metrics = %+v, want %+v", cfg.Metrics, want)
	}
	// A forward proxy alone, with metrics on another port of the same host.
	cfg = mustParse(t, "forward_proxies:\n  - {address: \"127.0.0.1:3128\"}\nmetrics: {address: \"127.0.0.1:9090\"}\n")
	if cfg.Metrics == nil || cfg.Metrics.Address != "127.0.0.1:9090" {
		t.Errorf("Metrics = %+v next to a forward proxy", cfg.Metrics)
	}
}

func TestMetricsConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"empty block", listener + "metrics:\n", []string{
			`f.yaml:3:1: metrics needs an address, like metrics: {address: "127.0.0.1:9090"}; leave the key out to turn metrics off`}},
		{"no address", listener + "metrics: {path: /m}\n", []string{
			`f.yaml:3:1: metrics needs an address, like metrics: {address: "127.0.0.1:9090"}; leave the key out to turn metrics off`}},
		{"not a mapping", listener + "metrics: \":9090\"\n", []string{
			`f.yaml:3:10: expected a mapping for metrics, got a string (":9090")`}},
		{"bad address", listener + "metrics: {address: \"9090\"}\n", []string{
			`f.yaml:3:20: invalid address "9090" for metrics: missing port`}},
		{"port zero", listener + "metrics: {address: \"127.0.0.1:0\"}\n", []string{
			`f.yaml:3:20: invalid address "127.0.0.1:0" for metrics: the port must be a number from 1 to 65535, not "0"`}},
		{"same as listener", listener + "metrics: {address: \":8080\"}\n", []string{
			`f.yaml:3:20: metrics address ":8080" is already used by listener "listener-1" (line 2)`}},
		{"overlaps listener", listener + "metrics: {address: \"127.0.0.1:8080\"}\n", []string{
			`f.yaml:3:20: metrics address "127.0.0.1:8080" overlaps listener "listener-1" (line 2): an empty host listens on every interface`}},
		{"same as forward proxy", listener + "forward_proxies:\n  - {name: out, address: \"127.0.0.1:3128\"}\nmetrics: {address: \"127.0.0.1:3128\"}\n", []string{
			`f.yaml:5:20: metrics address "127.0.0.1:3128" is already used by forward proxy "out" (line 4)`}},
		{"path", listener + "metrics: {address: \":9090\", path: metrics}\n", []string{
			`f.yaml:3:35: invalid metrics.path "metrics": paths start with "/"`}},
		{"path wildcard", listener + "metrics: {address: \":9090\", path: \"/{x}\"}\n", []string{
			`f.yaml:3:35: invalid metrics.path "/{x}": paths may not contain { or } (percent-encode them)`}},
		{"pprof not a bool", listener + "metrics: {address: \":9090\", pprof: yes please}\n", []string{
			`f.yaml:3:36: expected true or false for metrics.pprof, got a string ("yes please")`}},
		{"path under pprof", listener + "metrics: {address: \":9090\", path: /debug/pprof/m, pprof: true}\n", []string{
			`f.yaml:3:58: metrics.path "/debug/pprof/m" is where pprof: true serves the profiler (/debug/pprof/); move the metrics elsewhere`}},
		{"max users", listener + "metrics: {address: \":9090\", max_forward_users: 0}\n", []string{
			`f.yaml:3:48: metrics.max_forward_users must be at least 1, got 0`}},
		{"unknown key", listener + "metrics: {address: \":9090\", adress: x}\n", []string{
			`f.yaml:3:29: unknown key "adress" in metrics; did you mean "address"?`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.src))
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Parse: %v, want an ErrorList", err)
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

// TestMetricsConfigDocsDefaults checks the defaults docs/config.md gives
// for the metrics section.
func TestMetricsConfigDocsDefaults(t *testing.T) {
	section := docSection(t, readFile(t, docsPath), "## `metrics`")
	for key, want := range map[string]string{
		"path":              DefaultMetricsPath,
		"max_forward_users": strconv.Itoa(DefaultMaxForwardUsers),
	} {
		row := regexp.MustCompile("(?m)^\\| `" + key + "` \\| [^|]* \\| `([^`]+)` \\|").FindStringSubmatch(section)
		if row == nil || row[1] != want {
			t.Errorf("docs/config.md, metrics: the default of %s is written %v; the code says %q", key, row, want)
		}
	}
}
