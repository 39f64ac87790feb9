// Command report turns bench/h2/run.sh's raw.csv into latest.md (tables of
// medians, spread and Weir ÷ peer ratios) and summary.csv.
package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

type row map[string]string

var scenarios = []struct{ key, title, unit string }{
	{"h2small", "HTTP/2 over TLS, GET /small (12-byte body), 32 connections x 10 streams", "req/s"},
	{"h2big", "HTTP/2 over TLS, GET /100k (102400-byte body), 32 connections x 10 streams", "req/s"},
	{"hsfull", "TLS 1.3 full handshakes, one request per connection, 32 workers", "handshakes/s"},
	{"hsresume", "TLS 1.3 resumed handshakes (session tickets), one request per connection, 32 workers", "handshakes/s"},
}

func num(s string) float64 { f, _ := strconv.ParseFloat(s, 64); return f }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread is (max-min)/median in percent.
func spread(v []float64) float64 {
	m := median(v)
	if m == 0 || len(v) < 2 {
		return 0
	}
	return (slices.Max(v) - slices.Min(v)) / m * 100
}

func main() {
	raw := flag.String("raw", "bench/results/h2/raw.csv", "raw results")
	env := flag.String("env", "", "environment description to include")
	out := flag.String("out", "bench/results/h2", "output directory")
	flag.Parse()

	f, err := os.Open(*raw)
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) < 1 {
		fmt.Fprintln(os.Stderr, "report: bad csv:", err)
		os.Exit(1)
	}
	head := recs[0]
	var rows []row
	var proxies []string
	for _, r := range recs[1:] {
		m := row{}
		for i, h := range head {
			if i < len(r) {
				m[h] = r[i]
			}
		}
		rows = append(rows, m)
		if !slices.Contains(proxies, m["proxy"]) {
			proxies = append(proxies, m["proxy"])
		}
	}

	var md strings.Builder
	sum := [][]string{{"scenario", "proxy", "runs", "median_rate", "min_rate", "max_rate", "spread_pct", "median_proxy_core_pct", "median_load_core_pct", "median_rate_per_proxy_cpu_s", "failed", "weir_ratio", "weir_ratio_per_core", "alpn", "tls"}}
	md.WriteString("# HTTP/2 over TLS and TLS handshakes: results\n\n")
	if *env != "" {
		if b, err := os.ReadFile(*env); err == nil {
			md.WriteString("```\n" + string(b) + "```\n\n")
		}
	}
	md.WriteString("Medians of the runs; spread = (max − min) ÷ median. \"Per proxy CPU-s\" is the work done per second of CPU time used by the proxy's own processes (user + system): the proxy's cost, whichever of the proxy, the load generator or other work on the machine was the bottleneck. Ratios are Weir ÷ peer: above 1 Weir is ahead.\n\n")
	for _, sc := range scenarios {
		type agg struct {
			rate, pct, lpct, perc []float64
			failed                float64
			alpn, tls             string
		}
		a := map[string]*agg{}
		for _, r := range rows {
			if r["scenario"] != sc.key {
				continue
			}
			g := a[r["proxy"]]
			if g == nil {
				g = &agg{}
				a[r["proxy"]] = g
			}
			g.rate = append(g.rate, num(r["rate"]))
			g.pct = append(g.pct, num(r["proxy_core_pct"]))
			g.lpct = append(g.lpct, num(r["load_core_pct"]))
			g.perc = append(g.perc, num(r["rate_per_cpu_s"]))
			g.failed += num(r["failed"])
			g.alpn, g.tls = r["alpn"], r["tls"]
		}
		if len(a) == 0 {
			continue
		}
		w := a["weir"]
		fmt.Fprintf(&md, "## %s\n\n", sc.title)
		fmt.Fprintf(&md, "| proxy | median %s | runs (min–max) | spread | proxy core busy | load core busy | %s per proxy CPU-s | failed | Weir ÷ proxy | Weir ÷ proxy, per CPU-s |\n", sc.unit, sc.unit)
		md.WriteString("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, p := range proxies {
			g := a[p]
			if g == nil {
				continue
			}
			mr, mp := median(g.rate), median(g.perc)
			ratio, ratioC := "", ""
			if w != nil && p != "weir" && mr > 0 && mp > 0 {
				ratio = fmt.Sprintf("%.2f", median(w.rate)/mr)
				ratioC = fmt.Sprintf("%.2f", median(w.perc)/mp)
			}
			fmt.Fprintf(&md, "| %s | %.0f | %.0f–%.0f | %.0f%% | %.0f%% | %.0f%% | %.0f | %.0f | %s | %s |\n",
				p, mr, slices.Min(g.rate), slices.Max(g.rate), spread(g.rate), median(g.pct), median(g.lpct), mp, g.failed, ratio, ratioC)
			sum = append(sum, []string{sc.key, p, strconv.Itoa(len(g.rate)), fmt.Sprintf("%.1f", mr),
				fmt.Sprintf("%.1f", slices.Min(g.rate)), fmt.Sprintf("%.1f", slices.Max(g.rate)), fmt.Sprintf("%.1f", spread(g.rate)),
				fmt.Sprintf("%.0f", median(g.pct)), fmt.Sprintf("%.0f", median(g.lpct)), fmt.Sprintf("%.0f", mp), fmt.Sprintf("%.0f", g.failed),
				ratio, ratioC, g.alpn, g.tls})
		}
		md.WriteString("\n")
	}
	if err := os.WriteFile(filepath.Join(*out, "latest.md"), []byte(md.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	sf, err := os.Create(filepath.Join(*out, "summary.csv"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	cw := csv.NewWriter(sf)
	_ = cw.WriteAll(sum)
	sf.Close()
	fmt.Fprint(os.Stderr, md.String())
}
