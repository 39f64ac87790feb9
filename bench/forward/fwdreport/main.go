// Command fwdreport turns bench/forward/run.sh's raw.csv into latest.md
// (tables of medians, spreads and Weir ÷ peer ratios) and summary.csv.
package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

type row map[string]string

func (r row) f(k string) float64 {
	v, _ := strconv.ParseFloat(r[k], 64)
	return v
}

var (
	order  = []string{"ctput", "crate", "http", "stput", "srate"}
	titles = map[string]string{
		"ctput": "CONNECT tunnel throughput, MB/s",
		"crate": "CONNECT setup rate, tunnels/s",
		"http":  "absolute-form GET, requests/s",
		"stput": "SOCKS5 tunnel throughput, MB/s",
		"srate": "SOCKS5 setup rate, tunnels/s",
	}
	peer = map[string]string{"ctput": "squid", "crate": "squid", "http": "squid", "stput": "dante", "srate": "dante"}
	name = map[string]string{"weir": "Weir", "squid": "Squid", "dante": "Dante"}
)

func metric(sc string) string {
	if strings.HasSuffix(sc, "tput") {
		return "mbps"
	}
	return "rate"
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

type cell struct {
	vals, perCPU, p99, errs, busy []float64
}

func (c *cell) med() float64    { return median(c.vals) }
func (c *cell) medCPU() float64 { return median(c.perCPU) }
func (c *cell) spread() float64 { // (max-min)/median
	m := c.med()
	if m == 0 {
		return 0
	}
	return (slices.Max(c.vals) - slices.Min(c.vals)) / m
}

func num(v float64) string {
	if v >= 100 {
		s := strconv.FormatFloat(v, 'f', 0, 64)
		// thousands separators
		var b strings.Builder
		for i, ch := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(ch)
		}
		return b.String()
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func main() {
	raw := flag.String("raw", "bench/results/forward/raw.csv", "raw CSV")
	env := flag.String("env", "", "env.txt to include")
	out := flag.String("out", "bench/results/forward", "output directory")
	flag.Parse()
	f, err := os.Open(*raw)
	if err != nil {
		log.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	cells := map[string]*cell{}
	noisy := 0
	for _, rec := range recs[1:] {
		r := row{}
		for i, k := range recs[0] {
			r[k] = rec[i]
		}
		key := r["scenario"] + "/" + r["proxy"]
		c := cells[key]
		if c == nil {
			c = &cell{}
			cells[key] = c
		}
		m := r.f(metric(r["scenario"]))
		c.vals = append(c.vals, m)
		if cpu := r.f("cpu_s"); cpu > 0 {
			c.perCPU = append(c.perCPU, m*r.f("elapsed_s")/cpu)
		}
		c.p99 = append(c.p99, r.f("p99_ms"))
		c.errs = append(c.errs, r.f("errors"))
		c.busy = append(c.busy, r.f("busy_before_pct"))
		if r.f("quiet_wait_s") > 0 && r["busy_before_pct"] != "-" && r.f("busy_before_pct") >= 30 {
			noisy++
		}
	}
	var md strings.Builder
	sum := [][]string{{"scenario", "proxy", "runs", "median", "min", "max", "spread", "median_per_cpu_s", "median_p99_ms", "errors", "ratio_weir_over_peer", "ratio_per_cpu_s"}}
	fmt.Fprintf(&md, "# Forward proxy: Weir vs Squid (HTTP) and Dante (SOCKS5)\n\n")
	if *env != "" {
		if b, err := os.ReadFile(*env); err == nil {
			fmt.Fprintf(&md, "```\n%s```\n\n", b)
		}
	}
	fmt.Fprintf(&md, "Each proxy pinned to one core; origins and load generator on the other. Median of the runs, (min–max) in brackets; \"per CPU-s\" is the work done per second of CPU used by the proxy's own processes.\n\n")
	fmt.Fprintf(&md, "| scenario | Weir | peer | peer value | Weir ÷ peer | per CPU-s: Weir | peer | Weir ÷ peer | p99 ms Weir / peer | errors Weir / peer |\n|---|---:|---|---:|---:|---:|---:|---:|---|---|\n")
	for _, sc := range order {
		w, p := cells[sc+"/weir"], cells[sc+"/"+peer[sc]]
		if w == nil || p == nil {
			continue
		}
		ratio, ratioCPU := 0.0, 0.0
		if p.med() > 0 {
			ratio = w.med() / p.med()
		}
		if p.medCPU() > 0 {
			ratioCPU = w.medCPU() / p.medCPU()
		}
		p99 := "–"
		if metric(sc) == "rate" {
			p99 = fmt.Sprintf("%.2f / %.2f", median(w.p99), median(p.p99))
		}
		sumf := func(v []float64) float64 {
			t := 0.0
			for _, x := range v {
				t += x
			}
			return t
		}
		fmt.Fprintf(&md, "| %s | %s (%s–%s) | %s | %s (%s–%s) | **%.2f** | %s | %s | %.2f | %s | %.0f / %.0f |\n",
			titles[sc], num(w.med()), num(slices.Min(w.vals)), num(slices.Max(w.vals)), name[peer[sc]],
			num(p.med()), num(slices.Min(p.vals)), num(slices.Max(p.vals)), ratio,
			num(w.medCPU()), num(p.medCPU()), ratioCPU, p99, sumf(w.errs), sumf(p.errs))
		for _, pr := range []string{"weir", peer[sc]} {
			c := cells[sc+"/"+pr]
			rt, rc := "", ""
			if pr == "weir" {
				rt, rc = fmt.Sprintf("%.3f", ratio), fmt.Sprintf("%.3f", ratioCPU)
			}
			sum = append(sum, []string{sc, pr, strconv.Itoa(len(c.vals)), fmt.Sprintf("%.1f", c.med()),
				fmt.Sprintf("%.1f", slices.Min(c.vals)), fmt.Sprintf("%.1f", slices.Max(c.vals)), fmt.Sprintf("%.3f", c.spread()),
				fmt.Sprintf("%.1f", c.medCPU()), fmt.Sprintf("%.3f", median(c.p99)), fmt.Sprintf("%.0f", sumf(c.errs)), rt, rc})
		}
	}
	fmt.Fprintf(&md, "\nSpread (max − min over median) per cell:\n\n| scenario | Weir | peer |\n|---|---:|---:|\n")
	for _, sc := range order {
		w, p := cells[sc+"/weir"], cells[sc+"/"+peer[sc]]
		if w == nil || p == nil {
			continue
		}
		fmt.Fprintf(&md, "| %s | %.0f%% | %s %.0f%% |\n", sc, 100*w.spread(), name[peer[sc]], 100*p.spread())
	}
	fmt.Fprintf(&md, "\n%d run(s) started with the machine still at least 30%% busy after the quiet wait (column busy_before_pct in raw.csv).\n", noisy)
	if err := os.WriteFile(filepath.Join(*out, "latest.md"), []byte(md.String()), 0o644); err != nil {
		log.Fatal(err)
	}
	sf, err := os.Create(filepath.Join(*out, "summary.csv"))
	if err != nil {
		log.Fatal(err)
	}
	w := csv.NewWriter(sf)
	w.WriteAll(sum)
	w.Flush()
	sf.Close()
	fmt.Fprint(os.Stderr, md.String())
}
