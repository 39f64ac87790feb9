// Package accesslog is the built-in access log: one line per request, in
// the same text (logfmt) or JSON shape as Weir's other logs, written
// without allocating and flushed in the background.
package accesslog

import (
	"crypto/tls"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/weirproxy/weir/message"
	"github.com/weirproxy/weir/observe"
	"github.com/weirproxy/weir/proxy"
)

// timeFormat is slog's: RFC 3339 with milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// Format is the line format.
type Format uint8

// Formats.
const (
	Text Format = iota // time=... level=INFO msg=access client=... (like slog's TextHandler)
	JSON               // {"time":...,"level":"INFO","msg":"access",...}
)

// Logger writes access lines. It implements proxy.Logger.
type Logger struct {
	w      *observe.LineWriter
	format Format
	pool   sync.Pool
}

var _ proxy.Logger = (*Logger)(nil)

// New returns an access logger writing to w.
func New(w *observe.LineWriter, f Format) *Logger {
	l := &Logger{w: w, format: f}
	l.pool.New = func() any { b := make([]byte, 0, 512); return &b }
	return l
}

// Log implements proxy.Logger.
func (l *Logger) Log(s *proxy.Session) {
	bp := l.pool.Get().(*[]byte)
	b := (*bp)[:0]
	upstreamAddr := ""
	if s.Peer != nil {
		upstreamAddr = s.Peer.Addr
	}
	route := ""
	if s.Route != nil {
		route = s.Route.Name
	}
	var upDur time.Duration
	if !s.UpstreamHeadAt.IsZero() {
		upDur = s.UpstreamHeadAt.Sub(s.Start)
	}
	j := l.format == JSON
	if j {
		b = append(b, `{"time":"`...)
		b = s.End.AppendFormat(b, timeFormat)
		b = append(b, `","level":"INFO","msg":"access"`...)
	} else {
		b = append(b, "time="...)
		b = s.End.AppendFormat(b, timeFormat)
		b = append(b, " level=INFO msg=access"...)
	}
	b = field(b, j, "client")
	b = s.Client.Addr().Unmap().AppendTo(b)
	b = endStr(b, j)
	b = strField(b, j, "method", s.Req.Method)
	b = strField(b, j, "host", s.Req.Authority)
	b = strField(b, j, "path", s.Req.Path)
	b = numField(b, j, "status", int64(s.Status))
	b = numField(b, j, "bytes_in", s.BytesIn)
	b = numField(b, j, "bytes_out", s.BytesOut)
	b = strField(b, j, "route", []byte(route))
	b = strField(b, j, "upstream", []byte(upstreamAddr))
	b = numField(b, j, "attempts", int64(s.Attempts))
	b = durField(b, j, "duration", s.End.Sub(s.Start))
	b = durField(b, j, "upstream_duration", upDur)
	if s.Req.ProtoMajor >= 2 {
		b = strField(b, j, "proto", protoNames[min(s.Req.ProtoMajor, 3)])
	}
	if t := s.TLSInfo; t != nil {
		b = strField(b, j, "tls", tlsVersion(t.Version))
		if t.ServerName != "" {
			b = strField(b, j, "sni", message.S(t.ServerName))
		}
		if t.JA4 != "" {
			b = strField(b, j, "ja4", message.S(t.JA4))
			b = strField(b, j, "ja3", message.S(t.JA3))
		}
	}
	if s.Err != nil {
		b = strField(b, j, "error", []byte(s.Err.Error()))
	}
	if j {
		b = append(b, "}\n"...)
	} else {
		b = append(b, '\n')
	}
	_, _ = l.w.Write(b)
	*bp = b
	l.pool.Put(bp)
}

// field starts a string-valued field (the value follows, then endStr).
func field(b []byte, j bool, k string) []byte {
	if j {
		b = append(b, `,"`...)
		b = append(b, k...)
		return append(b, `":"`...)
	}
	b = append(b, ' ')
	b = append(b, k...)
	return append(b, '=')
}

func endStr(b []byte, j bool) []byte {
	if j {
		return append(b, '"')
	}
	return b
}

func strField(b []byte, j bool, k string, v []byte) []byte {
	if j {
		b = field(b, true, k)
		b = appendJSONEscaped(b, v)
		return append(b, '"')
	}
	b = append(b, ' ')
	b = append(b, k...)
	b = append(b, '=')
	if needsQuote(v) {
		return strconv.AppendQuote(b, string(v))
	}
	return append(b, v...)
}

func numField(b []byte, j bool, k string, n int64) []byte {
	if j {
		b = append(b, `,"`...)
		b = append(b, k...)
		b = append(b, `":`...)
	} else {
		b = append(b, ' ')
		b = append(b, k...)
		b = append(b, '=')
	}
	return strconv.AppendInt(b, n, 10)
}

func durField(b []byte, j bool, k string, d time.Duration) []byte {
	if j {
		// Seconds as a float, like slog's JSON handler prints nanoseconds;
		// seconds read better in dashboards.
		b = append(b, `,"`...)
		b = append(b, k...)
		b = append(b, `":`...)
		return strconv.AppendFloat(b, d.Seconds(), 'f', 6, 64)
	}
	b = append(b, ' ')
	b = append(b, k...)
	b = append(b, '=')
	return strconv.AppendFloat(b, d.Seconds(), 'f', 6, 64)
}

func needsQuote(v []byte) bool {
	if len(v) == 0 {
		return true
	}
	for _, c := range v {
		if c <= ' ' || c == '"' || c == '=' || c >= utf8.RuneSelf || c == 0x7f {
			return true
		}
	}
	return false
}

func appendJSONEscaped(b, v []byte) []byte {
	const hex = "0123456789abcdef"
	for _, c := range v {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == 0x7f || c >= 0x80:
			// Header bytes are not guaranteed UTF-8: escape, never emit
			// invalid JSON.
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return b
}

var protoNames = [...][]byte{2: []byte("HTTP/2"), 3: []byte("HTTP/3")}

// tlsVersion names a TLS version as logs show it.
func tlsVersion(v uint16) []byte {
	switch v {
	case tls.VersionTLS13:
		return tls13
	case tls.VersionTLS12:
		return tls12
	}
	return tlsOther
}

var tls13, tls12, tlsOther = []byte("1.3"), []byte("1.2"), []byte("other")
