package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultPath is where Endpoint serves the metrics unless told otherwise.
const DefaultPath = "/metrics"

// Endpoint serves a registry over HTTP on a listener of its own, apart
// from the proxy's: GET path answers in the Prometheus text format (or
// OpenMetrics, when asked), every other path with 404.
type Endpoint struct {
	ln  net.Listener
	srv *http.Server
	mux *http.ServeMux
}

// Listen opens addr ("host:port") for serving g at path ("" means
// DefaultPath). log receives scrape errors (nil: slog.Default()).
func Listen(addr, path string, g prometheus.Gatherer, log *slog.Logger) (*Endpoint, error) {
	if path == "" {
		path = DefaultPath
	}
	if log == nil {
		log = slog.Default()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+path, promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:            slogAdapter{log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
		EnableOpenMetrics:   true,
	}))
	return &Endpoint{ln: ln, mux: mux, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}}, nil
}

// ServePprof adds Go's profiler (net/http/pprof) under /debug/pprof/: a
// CPU profile is GET /debug/pprof/profile?seconds=N, a heap profile GET
// /debug/pprof/heap. Call it before Serve. Profiles show a lot about the
// process and a CPU profile costs a few percent while it runs: keep the
// endpoint on a loopback or private address.
func (e *Endpoint) ServePprof() {
	e.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	e.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	e.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	e.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	e.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// Addr is the address the endpoint listens on.
func (e *Endpoint) Addr() net.Addr { return e.ln.Addr() }

// Serve serves until Shutdown or Close; it returns nil then.
func (e *Endpoint) Serve() error {
	if err := e.srv.Serve(e.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting scrapes and waits, within ctx, for those in
// flight; then it closes what remains.
func (e *Endpoint) Shutdown(ctx context.Context) error {
	err := e.srv.Shutdown(ctx)
	if err != nil {
		_ = e.srv.Close()
	}
	return err
}

// Close closes the endpoint at once, also when it never served.
func (e *Endpoint) Close() error {
	err := e.srv.Close()
	_ = e.ln.Close()
	return err
}

// slogAdapter logs promhttp's errors through slog.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Println(v ...any) {
	if len(v) == 1 {
		a.log.Warn("metrics scrape", "err", v[0])
		return
	}
	a.log.Warn("metrics scrape", "err", v)
}
