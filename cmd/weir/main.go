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
                              run a reverse proxy without a file
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

func cmdReverseProxy(args []string, stderr io.Writer) int {
	fs := newFlagSet("reverse-proxy", "reverse-proxy --from ADDR --to URL [--to URL ...] [--lb POLICY]", stderr)
	var q weir.QuickReverseProxy
	fs.StringVar(&q.From, "from", "", "`ADDR` to listen on, like :8080 or 127.0.0.1:8080 (required)")
	fs.Func("to", "upstream `URL`, like http://127.0.0.1:9000; repeat for several (required)", func(v string) error {
		q.To = append(q.To, v)
		return nil
	})
	fs.StringVar(&q.LB, "lb", "round_robin", "load-balancing `POLICY`: round_robin, weighted_round_robin, least_conn, p2c or consistent_hash (keyed on client IP)")
	fs.StringVar(&q.AccessLog, "access-log", "stdout", "where access lines go: stdout, stderr, off or a file `PATH`")
	var lf logFlags
	lf.register(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	q.LogFormat = lf.format
	cfg, err := q.Config()
	if err != nil {
		fmt.Fprintf(stderr, "weir reverse-proxy: %v\n", err)
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
