// Command report turns the raw measurements of bench/run.sh into the
// results page (latest.md), a per-cell summary (summary.csv) and a chart
// (chart.png, drawn with gnuplot when it is installed).
//
//	report -raw bench/results/raw.csv -idle bench/results/idle.csv \
//	       -env bench/results/env.txt -out bench/results
//
// Every figure in a cell is the median over the runs of that cell,
// computed per column.
package main

import (
	"bytes"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

var proxyLabel = map[string]string{
	"tcpfloor":   "TCP floor (io.Copy)",
	"epollfloor": "TCP floor (epoll loop)",
	"looproxy":   "event-loop prototype",
	"weir":       "Weir",
	"nginx":      "nginx",
	"haproxy":    "HAProxy",
	"h2o":        "h2o",
	"caddy":      "Caddy",
	"weir2":      "Weir, 2 cores",
}

var scenarioLabel = map[string]string{
	"small64":  "12 B response, keep-alive, 64 connections",
	"small512": "12 B response, keep-alive, 512 connections",
	"big64":    "100 KiB response, keep-alive, 64 connections",
	"close64":  "12 B response, new connection per request (Connection: close), 64 connections",
	"post64":   "POST 64 KiB body, 12 B response, keep-alive, 64 connections",
}

var scenarioShort = map[string]string{
	"small64":  "small, 64 conns",
	"small512": "small, 512 conns",
	"big64":    "100 KiB, 64 conns",
	"close64":  "conn per request",
	"post64":   "POST 64 KiB",
}

// row is one measured run.
type row map[string]string

func (r row) f(k string) float64 {
	v, _ := strconv.ParseFloat(r[k], 64)
	return v
}

type cell struct {
	pass, proxy, scenario string
	runs                  []row
}

func (c *cell) median(k string) float64 {
	v := make([]float64, 0, len(c.runs))
	for _, r := range c.runs {
		if r[k] != "" {
			v = append(v, r.f(k))
		}
	}
	return median(v)
}

func (c *cell) sum(k string) float64 {
	s := 0.0
	for _, r := range c.runs {
		s += r.f(k)
	}
	return s
}

// cpuPerReq is the median over runs of proxy CPU time per request, in µs.
func (c *cell) cpuPerReq() float64 {
	v := make([]float64, 0, len(c.runs))
	for _, r := range c.runs {
		if n := r.f("requests"); n > 0 {
			v = append(v, r.f("cpu_s")/n*1e6)
		}
	}
	return median(v)
}

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

func readCSV(path string) ([]row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, nil
	}
	var out []row
	for _, rec := range recs[1:] {
		r := row{}
		for i, k := range recs[0] {
			if i < len(rec) {
				r[k] = rec[i]
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func main() {
	rawPath := flag.String("raw", "bench/results/raw.csv", "raw measurements `file`")
	idlePath := flag.String("idle", "", "idle-connection results `file` (optional)")
	envPath := flag.String("env", "", "environment description `file` (optional)")
	out := flag.String("out", "bench/results", "output `directory`")
	flag.Parse()

	raw, err := readCSV(*rawPath)
	if err != nil {
		fail(err)
	}
	var idle []row
	if *idlePath != "" {
		if idle, err = readCSV(*idlePath); err != nil && !os.IsNotExist(err) {
			fail(err)
		}
	}
	var env []byte
	if *envPath != "" {
		env, _ = os.ReadFile(*envPath)
	}

	// Cells in the order they were first measured.
	var cells []*cell
	index := map[string]*cell{}
	var scenarios, proxies []string
	for _, r := range raw {
		k := r["pass"] + "/" + r["proxy"] + "/" + r["scenario"]
		c := index[k]
		if c == nil {
			c = &cell{pass: r["pass"], proxy: r["proxy"], scenario: r["scenario"]}
			index[k] = c
			cells = append(cells, c)
		}
		// wrk counts every response in Requests/sec; keep only the 2xx ones.
		if n := r.f("requests"); n > 0 {
			r["rps_ok"] = strconv.FormatFloat(r.f("rps")*(n-r.f("non2xx"))/n, 'f', 2, 64)
		} else {
			r["rps_ok"] = "0"
		}
		c.runs = append(c.runs, r)
		if !slices.Contains(scenarios, r["scenario"]) {
			scenarios = append(scenarios, r["scenario"])
		}
		if !slices.Contains(proxies, r["proxy"]) {
			proxies = append(proxies, r["proxy"])
		}
	}
	get := func(proxy, scenario string) *cell {
		for _, c := range cells {
			if c.proxy == proxy && c.scenario == scenario {
				return c
			}
		}
		return nil
	}

	if err := writeSummary(filepath.Join(*out, "summary.csv"), cells); err != nil {
		fail(err)
	}

	var md bytes.Buffer
	w := func(format string, a ...any) { fmt.Fprintf(&md, format, a...) }
	runs := 0
	for _, c := range cells {
		runs = max(runs, len(c.runs))
	}
	w("# Weir benchmark results\n\n")
	w("Written by `bench/run.sh`; see BENCHMARKS.md for the method. Every figure is the median of %d run(s) per cell.\n", runs)
	w("Each proxy runs on one core (`taskset`), the origin and wrk (1 thread) share the other core; \"Weir, 2 cores\" is Weir with GOMAXPROCS=2 and no pinning (it shares a core with the load generator).\n\n")
	if len(env) > 0 {
		w("```\n%s```\n\n", env)
	}

	w("## Results per scenario\n\n")
	w("Columns: 2xx responses per second (wrk's Requests/sec less the non-2xx share); wrk latency percentiles; CPU seconds the proxy process used during the measured run (utime+stime from /proc/PID/stat) and the same per request; peak RSS (VmHWM; summed over the master and worker for nginx); errors seen by wrk; how busy the load core (origin + wrk) was; and Weir's requests/s divided by this row's.\n\n")
	for _, sc := range scenarios {
		w("### %s\n\n", orDefault(scenarioLabel[sc], sc))
		w("| proxy | req/s (2xx) | p50 ms | p99 ms | proxy CPU s | CPU µs/req | peak RSS MiB | non-2xx | socket errors | load core busy | Weir ÷ this |\n")
		w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		weir := get("weir", sc)
		for _, p := range proxies {
			c := get(p, sc)
			if c == nil {
				continue
			}
			ratio := "—"
			if weir != nil && p != "weir" && c.median("rps_ok") > 0 {
				ratio = fmt.Sprintf("%.2f", weir.median("rps_ok")/c.median("rps_ok"))
			}
			w("| %s | %s | %.2f | %.2f | %.2f | %.1f | %.1f | %.0f | %.0f | %.0f%% | %s |\n",
				orDefault(proxyLabel[p], p), thousands(c.median("rps_ok")), c.median("p50_ms"), c.median("p99_ms"),
				c.median("cpu_s"), c.cpuPerReq(), c.median("peak_rss_kib")/1024, c.sum("non2xx"), c.sum("socket_errors"),
				c.median("core_load_pct"), ratio)
		}
		w("\n")
	}

	w("## Weir's ratio to each peer\n\n")
	w("Weir's requests/s divided by the peer's (above 1: Weir is faster), and in brackets Weir's CPU time per request divided by the peer's (below 1: Weir is cheaper).\n\n")
	peers := []string{}
	for _, p := range proxies {
		if p != "weir" {
			peers = append(peers, p)
		}
	}
	w("| scenario |")
	for _, p := range peers {
		w(" %s |", orDefault(proxyLabel[p], p))
	}
	w("\n|---|")
	for range peers {
		w("---:|")
	}
	w("\n")
	for _, sc := range scenarios {
		weir := get("weir", sc)
		if weir == nil {
			continue
		}
		w("| %s |", orDefault(scenarioShort[sc], sc))
		for _, p := range peers {
			c := get(p, sc)
			if c == nil || c.median("rps_ok") == 0 || c.cpuPerReq() == 0 {
				w(" — |")
				continue
			}
			w(" %.2f (%.2f) |", weir.median("rps_ok")/c.median("rps_ok"), weir.cpuPerReq()/c.cpuPerReq())
		}
		w("\n")
	}
	w("\n")

	if len(idle) > 0 {
		w("## Idle keep-alive connections\n\n")
		w("`bench/idleconns` opens the connections; each sends one request, reads the response and stays idle. RSS is VmRSS of the proxy (master + worker for nginx) before and after.\n\n")
		w("| proxy | connections | still open | RSS before MiB | RSS after MiB | bytes per connection |\n")
		w("|---|---:|---:|---:|---:|---:|\n")
		for _, r := range idle {
			w("| %s | %s | %s | %.1f | %.1f | %s |\n", orDefault(proxyLabel[r["proxy"]], r["proxy"]), r["conns"], r["alive"],
				r.f("rss_before_kib")/1024, r.f("rss_after_kib")/1024, thousands(r.f("per_conn_bytes")))
		}
		w("\n")
	}

	var failures []string
	for _, c := range cells {
		for _, r := range c.runs {
			var what []string
			if v := r.f("non2xx"); v > 0 {
				what = append(what, fmt.Sprintf("%.0f non-2xx of %.0f responses", v, r.f("requests")))
			}
			if v := r.f("socket_errors"); v > 0 {
				what = append(what, fmt.Sprintf("%.0f socket errors", v))
			}
			if v := r.f("proxy_log_errors"); v > 0 {
				what = append(what, fmt.Sprintf("%.0f warning/error log lines", v))
			}
			if v := r.f("recover_s"); v > 0 {
				what = append(what, fmt.Sprintf("not answering 200 after the warm-up; recovered after %.1f s", v))
			}
			if len(what) > 0 {
				failures = append(failures, fmt.Sprintf("- %s / %s run %s: %s", orDefault(proxyLabel[c.proxy], c.proxy), c.scenario, r["run"], strings.Join(what, "; ")))
			}
		}
	}
	w("## Failures\n\n")
	if len(failures) == 0 {
		w("None: every run saw only 2xx responses, no socket errors and no proxy warnings.\n\n")
	} else {
		w("Details (proxy logs, wrk output, the answer to a probe request) are in `errors/` and `wrk/` beside this file.\n\n%s\n\n", strings.Join(failures, "\n"))
	}

	var noisy []string
	for _, c := range cells {
		for _, r := range c.runs {
			if r.f("other_cpu_s") > 0.1*r.f("duration_s") {
				noisy = append(noisy, fmt.Sprintf("%s/%s run %s (%.1f s)", c.proxy, c.scenario, r["run"], r.f("other_cpu_s")))
			}
		}
	}
	w("## Noise\n\n")
	if len(noisy) == 0 {
		w("No run saw other processes use more than 10%% of a core.\n\n")
	} else {
		w("Runs during which other processes on the machine used more than 10%% of a core: CPU seconds (user+system, softirq excluded) not accounted for by the proxy, the origin or wrk. The measured processes run at a higher priority, so most of this is other work filling idle time (typically on the load core when a slow proxy leaves it idle) rather than time taken from the measured processes: %s.\n\n", strings.Join(noisy, ", "))
	}

	chart := filepath.Join(*out, "chart.png")
	if err := drawChart(*out, chart, cells, scenarios, proxies, idle, get); err != nil {
		fmt.Fprintf(os.Stderr, "report: no chart: %v\n", err)
	} else {
		w("## Chart\n\n![requests per second per proxy and scenario](chart.png)\n")
	}
	if err := os.WriteFile(filepath.Join(*out, "latest.md"), md.Bytes(), 0o644); err != nil {
		fail(err)
	}
	_, _ = io.Copy(os.Stderr, bytes.NewReader(md.Bytes()))
}

func writeSummary(path string, cells []*cell) error {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	_ = cw.Write([]string{"pass", "proxy", "scenario", "runs", "rps", "p50_ms", "p99_ms", "cpu_s", "cpu_us_per_req",
		"peak_rss_kib", "non2xx_total", "socket_errors_total", "core_load_pct", "other_cpu_s", "weir_rps_ratio"})
	for _, c := range cells {
		ratio := ""
		for _, o := range cells {
			if o.proxy == "weir" && o.scenario == c.scenario && c.median("rps_ok") > 0 {
				ratio = fmt.Sprintf("%.3f", o.median("rps_ok")/c.median("rps_ok"))
			}
		}
		_ = cw.Write([]string{c.pass, c.proxy, c.scenario, strconv.Itoa(len(c.runs)),
			fmt.Sprintf("%.0f", c.median("rps_ok")), fmt.Sprintf("%.3f", c.median("p50_ms")), fmt.Sprintf("%.3f", c.median("p99_ms")),
			fmt.Sprintf("%.2f", c.median("cpu_s")), fmt.Sprintf("%.2f", c.cpuPerReq()), fmt.Sprintf("%.0f", c.median("peak_rss_kib")),
			fmt.Sprintf("%.0f", c.sum("non2xx")), fmt.Sprintf("%.0f", c.sum("socket_errors")),
			fmt.Sprintf("%.0f", c.median("core_load_pct")), fmt.Sprintf("%.2f", c.median("other_cpu_s")), ratio})
	}
	cw.Flush()
	return os.WriteFile(path, b.Bytes(), 0o644)
}

var colors = map[string]string{
	"tcpfloor": "#9e9e9e", "epollfloor": "#616161", "looproxy": "#00838f", "weir": "#1565c0", "weir2": "#64b5f6", "nginx": "#2e7d32",
	"haproxy": "#c62828", "h2o": "#f9a825", "caddy": "#6a1b9a",
}

// drawChart writes one bar panel per scenario (requests/s per proxy) and,
// when measured, one for idle-connection memory, through gnuplot.
func drawChart(dir, png string, cells []*cell, scenarios, proxies []string, idle []row, get func(p, s string) *cell) error {
	gp, err := exec.LookPath("gnuplot")
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "weir-chart")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	panels := len(scenarios)
	if len(idle) > 0 {
		panels++
	}
	cols := 3
	rowsN := (panels + cols - 1) / cols
	var s bytes.Buffer
	fmt.Fprintf(&s, "set terminal pngcairo size 1500,%d font 'sans,10'\nset output %q\n", 430*rowsN, png)
	fmt.Fprintf(&s, "set multiplot layout %d,%d title 'Weir vs peers: one core per proxy (median of runs)' font 'sans,13'\n", rowsN, cols)
	s.WriteString("set style fill solid 0.9 border -1\nset boxwidth 0.7\nunset key\nset grid ytics\n")
	s.WriteString("set xtics rotate by -30 nomirror\nset offsets 0,0,graph 0.12,0\nset yrange [0:*]\nset format y '%.0s%c'\nset bmargin 6\n")
	for i, sc := range scenarios {
		var d bytes.Buffer
		n := 0
		for _, p := range proxies {
			c := get(p, sc)
			if c == nil {
				continue
			}
			fmt.Fprintf(&d, "%d \"%s\" %.0f 0x%s\n", n, orDefault(proxyLabel[p], p), c.median("rps_ok"), strings.TrimPrefix(colors[p], "#"))
			n++
		}
		f := filepath.Join(tmp, fmt.Sprintf("s%d.dat", i))
		if err := os.WriteFile(f, d.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(&s, "set title %q\nset ylabel 'requests/s'\nset xrange [-0.6:%f]\n", orDefault(scenarioShort[sc], sc), float64(n)-0.4)
		fmt.Fprintf(&s, "plot %q using 1:3:4:xtic(2) with boxes lc rgb variable, '' using 1:3:(sprintf('%%.0f',$3)) with labels offset 0,0.7 font 'sans,8'\n", f)
	}
	if len(idle) > 0 {
		var d bytes.Buffer
		for i, r := range idle {
			fmt.Fprintf(&d, "%d \"%s\" %.2f 0x%s\n", i, orDefault(proxyLabel[r["proxy"]], r["proxy"]), r.f("per_conn_bytes")/1024,
				strings.TrimPrefix(colors[r["proxy"]], "#"))
		}
		f := filepath.Join(tmp, "idle.dat")
		if err := os.WriteFile(f, d.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(&s, "set title 'RSS per idle keep-alive connection'\nset ylabel 'KiB'\nset format y '%%.0f'\nset xrange [-0.6:%f]\n", float64(len(idle))-0.4)
		fmt.Fprintf(&s, "plot %q using 1:3:4:xtic(2) with boxes lc rgb variable, '' using 1:3:(sprintf('%%.1f',$3)) with labels offset 0,0.7 font 'sans,8'\n", f)
	}
	s.WriteString("unset multiplot\n")
	script := filepath.Join(tmp, "chart.gp")
	if err := os.WriteFile(script, s.Bytes(), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(gp, script)
	cmd.Stderr = os.Stderr
	return cmd.Run()
}

func thousands(v float64) string {
	s := strconv.FormatFloat(v, 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "report:", err)
	os.Exit(1)
}
