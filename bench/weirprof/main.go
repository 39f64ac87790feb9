// Command weirprof runs Weir's quick reverse proxy (the same configuration
// as `weir reverse-proxy --from ADDR --to URL --access-log off`) with a
// runtime/pprof CPU profile running for a fixed time, for the benchmark
// harness: Weir has no profiling endpoint of its own.
//
//	weirprof -from 127.0.0.1:8080 -to http://127.0.0.1:9000 -cpuprofile cpu.pprof -seconds 10 -delay 2
//
// It starts serving at once, waits -delay (warm-up), profiles for
// -seconds, writes the profile, and keeps serving until SIGINT/SIGTERM.
// -memprofile writes a heap profile when the CPU profile stops.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/weirproxy/weir"
)

func main() {
	from := flag.String("from", "127.0.0.1:8080", "listen `address`")
	to := flag.String("to", "http://127.0.0.1:9000", "upstream `URL`")
	cpuprofile := flag.String("cpuprofile", "cpu.pprof", "CPU profile output `file`")
	memprofile := flag.String("memprofile", "", "heap profile output `file` (optional)")
	seconds := flag.Float64("seconds", 10, "how long to profile")
	delay := flag.Duration("delay", 0, "wait this long before profiling starts")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	slog.SetDefault(log)
	cfg, err := weir.QuickReverseProxy{From: *from, To: []string{*to}, AccessLog: "off"}.Config()
	if err != nil {
		fmt.Fprintln(os.Stderr, "weirprof:", err)
		os.Exit(2)
	}
	srv, err := weir.New(cfg, weir.Options{Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "weirprof:", err)
		os.Exit(1)
	}
	if err := srv.Listen(); err != nil {
		fmt.Fprintln(os.Stderr, "weirprof:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		time.Sleep(*delay)
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "weirprof:", err)
			return
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "weirprof:", err)
			return
		}
		time.Sleep(time.Duration(*seconds * float64(time.Second)))
		pprof.StopCPUProfile()
		f.Close()
		if *memprofile != "" {
			runtime.GC()
			if mf, err := os.Create(*memprofile); err == nil {
				_ = pprof.WriteHeapProfile(mf)
				mf.Close()
			}
		}
		fmt.Fprintf(os.Stderr, "weirprof: wrote %s (gomaxprocs %d)\n", *cpuprofile, runtime.GOMAXPROCS(0))
	}()
	if err := srv.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "weirprof:", err)
		os.Exit(1)
	}
}
