// Command weir runs the Weir proxy. See `weir help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/weirproxy/weir"
	"github.com/weirproxy/weir/config"
)

const usage = `Weir is a programmable, high-performance HTTP proxy.

Usage:
  weir run -c FILE            run with a YAML configuration
  weir check -c FILE          validate a configuration and exit
  weir reverse-proxy --from ADDR --to URL [--to URL ...] [--lb POLICY]
                    [--tls-cert FILE --tls-key FILE [--http3]] [--h2c]
                    [--metrics ADDR]
                              run a reverse proxy without a file
  weir forward-proxy [--listen ADDR] [--auth USER:PASS] [--allow-private]
                    [--metrics ADDR]
                              run a forward proxy (HTTP, CONNECT and SOCKS5
                              on one port)
  weir version                print the version
  weir help [COMMAND]         show help

Run 'weir help COMMAND' for a command's flags. Documentation: docs/ in the
source tree (docs/config.md describes every configuration key).

Signals: SIGTERM or SIGINT drain (stop accepting, finish requests in flight
up to shutdown_grace, exit 0); SIGHUP reloads the file given to 'weir run'.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		return cmdRun(rest, stderr)
	case "check":
		return cmdCheck(rest, stdout, stderr)
	case "reverse-proxy":
		return cmdReverseProxy(rest, stderr)
	case "forward-proxy":
		return forwardProxyMain(rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "weir %s %s %s/%s\n", weir.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "help", "-h", "--help":
		if len(rest) > 0 {
			return run([]string{rest[0], "-h"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "weir: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

type logFlags struct{ level, format string }

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "", "log level: debug, info, warn or error (default: the file's log.level, else info)")
	fs.StringVar(&l.format, "log-format", "", "log format: text or json (default: the file's log.format, else text)")
}

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: weir %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "weir %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return 2, false
	}
	return 0, true
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", "check -c FILE", stderr)
	file := fs.String("c", "", "the configuration `FILE` to validate (required)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *file == "" {
		fmt.Fprintln(stderr, "weir check: -c FILE is required")
		return 2
	}
	if _, err := config.Load(*file); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: configuration is valid\n", *file)
	return 0
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := newFlagSet("run", "run -c FILE [--log-level LEVEL] [--log-format FORMAT]", stderr)
	file := fs.String("c", "", "the configuration `FILE` (required)")
	var lf logFlags
	lf.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *file == "" {
		fmt.Fprintln(stderr, "weir run: -c FILE is required")
		return 2
	}
	cfg, err := config.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	reload := func() (*config.Config, error) { return config.Load(*file) }
	return serve(cfg, lf, reload, stderr)
}

const reverseProxyHelp = `Usage: weir reverse-proxy --from ADDR --to URL [--to URL ...] [flags]

Runs a reverse proxy without a configuration file: Weir listens on ADDR and
sends every request to the upstream servers given with --to, spreading
requests over them (round robin unless --lb says otherwise). Everything
not set by a flag has the default docs/config.md gives.

Toward clients, Weir speaks HTTP/1.1, plus:
  --tls-cert, --tls-key   TLS (https://), with HTTP/2 for clients that ask
                          for it (ALPN h2) and HTTP/1.1 for the others
  --http3                 also HTTP/3 over QUIC, on the UDP port with the
                          same number; needs --tls-cert and --tls-key
  --h2c                   also cleartext HTTP/2 for clients that know in
                          advance that Weir speaks it ("prior knowledge",
                          curl --http2-prior-knowledge); not with TLS

Toward upstreams, the scheme of the --to URLs says what Weir speaks; all
of them must use the same one:
  http://HOST:PORT        HTTP/1.1 (the default when the scheme is left out)
  https://HOST:PORT       HTTP/1.1 over TLS, certificates verified against
                          the system roots, or --upstream-ca
  h2c://HOST:PORT         cleartext HTTP/2 with prior knowledge (e.g. gRPC
                          servers without TLS)
  h2://HOST:PORT          HTTP/2 over TLS, verified like https://

Examples:
  # HTTP/1.1 in front of two local servers
  weir reverse-proxy --from :8080 --to http://127.0.0.1:9001 --to http://127.0.0.1:9002

  # HTTPS with HTTP/2 and HTTP/3 on port 8443
  weir reverse-proxy --from :8443 --tls-cert cert.pem --tls-key key.pem --http3 \
      --to http://127.0.0.1:9000

  # a gRPC server behind Weir, reachable over cleartext HTTP/2 and HTTP/1.1
  weir reverse-proxy --from :8080 --h2c --to h2c://127.0.0.1:50051

  # an HTTPS origin signed by a private CA
  weir reverse-proxy --from :8080 --to https://10.0.0.5:8443 --upstream-ca ca.pem

  # Prometheus metrics at http://127.0.0.1:9090/metrics
  weir reverse-proxy --from :8080 --to http://127.0.0.1:9000 --metrics 127.0.0.1:9090

Flags:
`

func cmdReverseProxy(args []string, stderr io.Writer) int {
	fs := newFlagSet("reverse-proxy", "", stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, reverseProxyHelp)
		fs.PrintDefaults()
	}
	var q weir.QuickReverseProxy
	fs.StringVar(&q.From, "from", "", "`ADDR` to listen on, like :8080 or 127.0.0.1:8080 (required)")
	fs.Func("to", "upstream `URL`, like http://127.0.0.1:9000, https://, h2c:// or h2://; repeat for several (required)", func(v string) error {
		q.To = append(q.To, v)
		return nil
	})
	fs.StringVar(&q.LB, "lb", "round_robin", "load-balancing `POLICY`: round_robin, weighted_round_robin, least_conn, p2c or consistent_hash (keyed on client IP)")
	fs.StringVar(&q.AccessLog, "access-log", "stdout", "where access lines go: stdout, stderr, off or a file `PATH`")
	fs.StringVar(&q.TLSCert, "tls-cert", "", "serve TLS with the certificate in this PEM `FILE` (with any intermediates after it); needs --tls-key")
	fs.StringVar(&q.TLSKey, "tls-key", "", "the certificate's private key, a PEM `FILE`; needs --tls-cert")
	fs.BoolVar(&q.HTTP3, "http3", false, "also serve HTTP/3 over QUIC on the UDP port of the same number; needs --tls-cert and --tls-key")
	fs.BoolVar(&q.H2C, "h2c", false, "also accept cleartext HTTP/2 with prior knowledge; only without TLS")
	fs.StringVar(&q.UpstreamCA, "upstream-ca", "", "verify https:// and h2:// upstreams against the CA certificates in this PEM `FILE` instead of the system roots")
	fs.StringVar(&q.Metrics, "metrics", "", "serve Prometheus metrics at /metrics on this `ADDR`, like 127.0.0.1:9090 (default: no metrics; see docs/metrics.md)")
	fs.BoolVar(&q.UpstreamInsecure, "upstream-insecure", false, "do not verify the certificates of https:// and h2:// upstreams (for tests only: anyone on the path could pose as them)")
	var lf logFlags
	lf.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	q.LogFormat = lf.format
	cfg, err := q.Config()
	if err != nil {
		for line := range strings.SplitSeq(err.Error(), "\n") {
			fmt.Fprintf(stderr, "weir reverse-proxy: %s\n", line)
		}
		return 2
	}
	return serve(cfg, lf, nil, stderr)
}

// serve runs until SIGTERM/SIGINT and drains; SIGHUP reloads when reload
// is set.
func serve(cfg *config.Config, lf logFlags, reload func() (*config.Config, error), stderr io.Writer) int {
	log := newLogger(cfg, lf, stderr)
	slog.SetDefault(log)
	srv, err := weir.New(cfg, weir.Options{Logger: log})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	// Signal handlers go in before the port opens, so that a SIGTERM sent
	// as soon as Weir answers always drains instead of killing it.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if reload != nil {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		go func() {
			for range hup {
				next, err := reload()
				if err == nil {
					err = srv.Reload(next)
				}
				if err != nil {
					log.Error("reload failed; still serving the previous configuration", "err", err)
					continue
				}
				log.Info("configuration reloaded")
			}
		}()
	}
	if err := srv.Listen(); err != nil {
		log.Error("cannot listen", "err", err)
		return 1
	}
	log.Info("weir starting", "version", weir.Version, "gomaxprocs", runtime.GOMAXPROCS(0))
	if err := srv.Serve(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return 1
	}
	return 0
}

func newLogger(cfg *config.Config, lf logFlags, w io.Writer) *slog.Logger {
	level, format := cfg.Log.Level, cfg.Log.Format
	if lf.level != "" {
		level = lf.level
	}
	if lf.format != "" {
		format = lf.format
	}
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
