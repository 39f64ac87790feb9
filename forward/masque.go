package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/masque"
	"github.com/weirproxy/weir/proxyauth"
)

// masqueFront serves CONNECT-UDP over HTTP/3: it authenticates, counts
// the flow against the user's limits, and hands the request to a
// masque.Handler whose destinations go through the egress policy.
type masqueFront struct {
	srv *Server
	h   masque.Handler
}

// masqueFlow is what one CONNECT-UDP request carries between the hooks
// of masque.Handler, in its context.
type masqueFlow struct {
	id       identity
	ok       bool // authenticated
	client   netip.AddrPort
	src      netip.Addr
	user     *userState
	acquired bool
	refused  error // why the policy or the resolver said no
	target   netip.AddrPort
	up, down int64
	flowErr  error
	flowed   bool
}

type masqueKey struct{}

func flowOf(ctx context.Context) *masqueFlow {
	f, _ := ctx.Value(masqueKey{}).(*masqueFlow)
	return f
}

// newHTTP3 builds the HTTP/3 server for MASQUE.
func (s *Server) newHTTP3(tlsConf *tls.Config) *http3.Server {
	f := &masqueFront{srv: s}
	f.h = masque.Handler{
		Authorize:   f.authorize,
		Resolve:     f.resolve,
		LocalAddr:   func(r *http.Request) netip.Addr { return flowOf(r.Context()).src },
		IdleTimeout: s.opts.UDPIdleTimeout,
		Allow: func(r *http.Request, toTarget bool, n int) bool {
			fl := flowOf(r.Context())
			if lim := fl.user.limiter(toTarget); lim != nil {
				return lim.AllowN(time.Now(), n)
			}
			return true
		},
		OnFlow: func(r *http.Request, target netip.AddrPort, up, down int64, err error) {
			fl := flowOf(r.Context())
			if errors.Is(err, masque.ErrIdle) {
				err = nil // a quiet flow ending is the normal end of UDP
			}
			fl.target, fl.up, fl.down, fl.flowErr, fl.flowed = target, up, down, err, true
		},
	}
	return &http3.Server{
		Handler:         f,
		TLSConfig:       http3.ConfigureTLSConfig(tlsConf),
		EnableDatagrams: true,
		IdleTimeout:     s.opts.UDPIdleTimeout,
		QUICConfig: &quic.Config{
			EnableDatagrams: true,
			MaxIdleTimeout:  s.opts.UDPIdleTimeout,
			// No 0-RTT: a replayed CONNECT-UDP would open a flow.
			Allow0RTT: false,
		},
	}
}

func (f *masqueFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	srv := f.srv
	start := time.Now()
	fl := &masqueFlow{}
	fl.client, _ = netip.ParseAddrPort(r.RemoteAddr)
	var cred []byte
	if v := r.Header.Get("Proxy-Authorization"); v != "" {
		cred = []byte(v)
	}
	fl.id, fl.ok = srv.authenticate(cred)
	r.Header.Del("Proxy-Authorization")
	isFlow := r.Method == http.MethodConnect && r.Proto == masque.Protocol
	if isFlow && fl.ok {
		fl.src = srv.sources.Pick(fl.id.user, fl.id.session)
	}
	sw := &statusWriter{ResponseWriter: w}
	f.h.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), masqueKey{}, fl)))
	if fl.acquired {
		fl.user.release()
	}
	if !isFlow {
		return
	}
	if fl.flowed {
		// As for SOCKS5, only flows that were opened are counted.
		srv.usage.add(fl.id, kindMASQUE, fl.up, fl.down)
	}
	f.log(r, fl, sw.status, start)
}

// authorize checks the credentials and the user's connection limit.
func (f *masqueFront) authorize(w http.ResponseWriter, r *http.Request) int {
	fl := flowOf(r.Context())
	if !fl.ok {
		w.Header().Set("Proxy-Authenticate", proxyauth.DefaultChallenge)
		return http.StatusProxyAuthRequired
	}
	u, ok := f.srv.users.acquire(userKey(fl.id, fl.client.Addr()))
	if !ok {
		fl.flowErr = errUserConns
		w.Header().Set("Proxy-Status", proxyStatus("http_request_denied", errUserConns.Error()))
		return http.StatusTooManyRequests
	}
	fl.user, fl.acquired = u, true
	return 0
}

// resolve checks the target with the egress policy and resolves it to
// an address of the flow's source address family. The error's text goes
// to the client.
func (f *masqueFront) resolve(ctx context.Context, host string, port uint16) (netip.AddrPort, error) {
	fl := flowOf(ctx)
	ap, err := f.srv.dialer.ResolveUDPFrom(ctx, net.JoinHostPort(host, strconv.Itoa(int(port))), fl.src)
	if err == nil {
		return ap, nil
	}
	fl.refused = err
	var refused *egress.Refused
	switch {
	case errors.As(err, &refused):
		return ap, &masque.Refusal{Status: http.StatusForbidden, ErrorType: "destination_ip_prohibited", Details: refused.Reason}
	case isDNSError(err):
		return ap, &masque.Refusal{Status: http.StatusBadGateway, ErrorType: "dns_error", Details: "the destination's name could not be resolved"}
	}
	return ap, &masque.Refusal{Status: http.StatusBadGateway, ErrorType: "destination_unavailable", Details: "the destination could not be reached"}
}

func (f *masqueFront) log(r *http.Request, fl *masqueFlow, status int, start time.Time) {
	al := f.srv.opts.AccessLog
	if al == nil {
		return
	}
	host, port, _ := masque.ParseTarget(r.URL.Path)
	dest := r.URL.Path
	if port != 0 {
		dest = net.JoinHostPort(host, strconv.Itoa(int(port)))
	}
	attrs := make([]any, 0, 26)
	attrs = append(attrs,
		"proto", kindMASQUE.String(),
		"client", fl.client.Addr().Unmap().String(),
		"user", fl.id.user,
		"method", "CONNECT-UDP",
		"host", dest,
		"status", status,
		"bytes_in", fl.up,
		"bytes_out", fl.down,
	)
	if fl.src.IsValid() && fl.flowed {
		attrs = append(attrs, "source", fl.src.String())
	}
	if fl.target.IsValid() {
		attrs = append(attrs, "upstream", fl.target.String())
	}
	attrs = append(attrs, "duration", time.Since(start).Seconds())
	err := fl.flowErr
	if fl.refused != nil {
		err = fl.refused
	}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	al.Info("access", attrs...)
}

// statusWriter remembers the status a handler answered with, and still
// gives the handler the request's HTTP/3 stream.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// HTTPStream implements http3.HTTPStreamer.
func (w *statusWriter) HTTPStream() (*http3.Stream, error) {
	hs, ok := w.ResponseWriter.(http3.HTTPStreamer)
	if !ok {
		return nil, errors.New("forward: not an HTTP/3 response")
	}
	return hs.HTTPStream()
}

// Flush implements http.Flusher.
func (w *statusWriter) Flush() {
	if fl, ok := w.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}
