// Command fwdprof runs Weir's forward proxy (package forward, the same
// server as `weir forward-proxy --allow-private --connect-ports PORTS
// --access-log off`) with a runtime/pprof CPU profile running for a fixed
// time, for bench/forward/run.sh: Weir has no profiling endpoint of its own.
//
//	fwdprof -listen 127.0.0.1:3128 -connect-ports 18940,18941 -cpuprofile cpu.pprof -delay 3s -seconds 6
//
// -max-idle sets forward.Options.MaxIdlePerDestination. It serves at once, waits -delay (warm-up), profiles for -seconds, writes
// the profile, and keeps serving until SIGINT/SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weirproxy/weir/forward"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:3128", "listen `address`")
	ports := flag.String("connect-ports", "443", "`PORTS` tunnels may reach, comma-separated")
	cpuprofile := flag.String("cpuprofile", "cpu.pprof", "CPU profile output `file`")
	seconds := flag.Float64("seconds", 6, "how long to profile")
	delay := flag.Duration("delay", 0, "wait this long before profiling starts")
	maxIdle := flag.Int("max-idle", 0, "idle keep-alive connections kept per destination (0: forward.DefaultMaxIdlePerDestination)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	o := forward.Options{Listen: *listen, Logger: log, MaxIdlePerDestination: *maxIdle}
	o.Policy.AllowPrivate = true
	for p := range strings.SplitSeq(*ports, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fwdprof: -connect-ports:", err)
			os.Exit(2)
		}
		o.Policy.ConnectPorts = append(o.Policy.ConnectPorts, uint16(n))
	}
	srv, err := forward.New(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fwdprof:", err)
		os.Exit(1)
	}
	go func() {
		time.Sleep(*delay)
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fwdprof:", err)
			return
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "fwdprof:", err)
			return
		}
		time.Sleep(time.Duration(*seconds * float64(time.Second)))
		pprof.StopCPUProfile()
		f.Close()
		fmt.Fprintln(os.Stderr, "fwdprof: wrote", *cpuprofile)
	}()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(); err != nil && err != forward.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "fwdprof:", err)
		os.Exit(1)
	}
}
