// Command weirtls runs Weir's engine as a TLS-terminating reverse proxy
// for the HTTP/2 benchmarks: one listener that speaks HTTP/2 and HTTP/1.1
// over TLS (ALPN h2, http/1.1), one catch-all route to one HTTP/1.1
// origin, no access log. The route and upstream are the same as
// `weir reverse-proxy --to http://ORIGIN --access-log off`; the listener
// is served with proxy.Server.ServeListener and a tls.Config built here
// from the given certificate and key.
//
//	weirtls -listen 127.0.0.1:8443 -origin 127.0.0.1:9000 -cert c.pem -key k.pem
//	weirtls ... -cpuprofile cpu.pprof -profile-delay 3s -profile-seconds 8
//
// The CPU profile (optional) starts after -profile-delay and lasts
// -profile-seconds; the proxy keeps serving until SIGINT/SIGTERM.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/weirproxy/weir"
	"github.com/weirproxy/weir/proxy"
	"github.com/weirproxy/weir/tlsconf"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8443", "listen `address`")
	origin := flag.String("origin", "127.0.0.1:9000", "HTTP/1.1 origin `address`")
	certFile := flag.String("cert", "", "PEM certificate `file`")
	keyFile := flag.String("key", "", "PEM private key `file`")
	minTLS := flag.String("min-tls", "1.3", "lowest TLS version accepted: 1.2 or 1.3")
	cpuprofile := flag.String("cpuprofile", "", "CPU profile output `file` (optional)")
	delay := flag.Duration("profile-delay", 0, "wait this long before profiling starts")
	seconds := flag.Float64("profile-seconds", 10, "how long to profile")
	flag.Parse()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "weirtls:", err)
		os.Exit(1)
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	slog.SetDefault(log)

	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fail(err)
	}
	tc := &tls.Config{
		Certificates:     []tls.Certificate{cert},
		NextProtos:       tlsconf.DefaultALPN(), // h2, http/1.1
		MinVersion:       tls.VersionTLS13,
		CipherSuites:     tlsconf.ServerCipherSuites(),
		CurvePreferences: tlsconf.CurvePreferences(),
	}
	switch *minTLS {
	case "1.3":
	case "1.2":
		tc.MinVersion = tls.VersionTLS12
	default:
		fail(fmt.Errorf("-min-tls %q: want 1.2 or 1.3", *minTLS))
	}

	// The route and upstream group come from the quick reverse-proxy
	// configuration; its own (cleartext) listener is never opened.
	cfg, err := weir.QuickReverseProxy{From: *listen, To: []string{"http://" + *origin}, AccessLog: "off"}.Config()
	if err != nil {
		fail(err)
	}
	srv, err := weir.New(cfg, weir.Options{Logger: log})
	if err != nil {
		fail(err)
	}
	engine := srv.Engine()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fail(err)
	}
	fmt.Fprintf(os.Stderr, "weirtls: listening on %s (TLS, ALPN %v), origin %s, gomaxprocs %d\n",
		ln.Addr(), tc.NextProtos, *origin, runtime.GOMAXPROCS(0))

	if *cpuprofile != "" {
		go profile(*cpuprofile, *delay, *seconds)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- engine.ServeListener(ln, &proxy.ListenerOptions{TLS: tc}) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, proxy.ErrServerClosed) {
			fail(err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = engine.Shutdown(sctx)
}

func profile(path string, delay time.Duration, seconds float64) {
	time.Sleep(delay)
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "weirtls:", err)
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "weirtls:", err)
		return
	}
	time.Sleep(time.Duration(seconds * float64(time.Second)))
	pprof.StopCPUProfile()
	f.Close()
	fmt.Fprintf(os.Stderr, "weirtls: wrote %s\n", path)
}
