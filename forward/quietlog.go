package forward

import (
	"context"
	"log/slog"
)

// destinationLog is the engine's error log on the forward port. The
// engine warns when an upstream fails, which in a reverse proxy means one
// of the operator's servers is in trouble; here the upstream is whatever
// a client asked for, so that failure is the client's business: it is
// logged at debug level, and the access line carries it anyway.
type destinationLog struct{ slog.Handler }

func newDestinationLog(l *slog.Logger) *slog.Logger {
	return slog.New(destinationLog{l.Handler()})
}

func (h destinationLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "upstream failed" && r.Level > slog.LevelDebug {
		r.Level = slog.LevelDebug
		if !h.Handler.Enabled(ctx, r.Level) {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h destinationLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return destinationLog{h.Handler.WithAttrs(attrs)}
}

func (h destinationLog) WithGroup(name string) slog.Handler {
	return destinationLog{h.Handler.WithGroup(name)}
}
