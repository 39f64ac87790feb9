package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/weirproxy/weir/internal/testcert"
	"github.com/weirproxy/weir/proxy"
	"github.com/weirproxy/weir/upstream"
)

// rawCodec moves []byte messages as they are, so the test service needs
// no generated code.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

// echoService is a gRPC service with every kind of call.
type echoService struct {
	sawDeadline chan time.Duration
}

func (e *echoService) desc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: "weir.test.Echo",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "Unary", Handler: e.unary},
			{MethodName: "Fail", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var in []byte
				dec(&in)
				grpc.SetTrailer(ctx, metadata.Pairs("x-why", "because"))
				return nil, status.Error(codes.NotFound, "no such thing: "+string(in))
			}},
			{MethodName: "Slow", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var in []byte
				dec(&in)
				if dl, ok := ctx.Deadline(); ok {
					e.sawDeadline <- time.Until(dl)
				} else {
					e.sawDeadline <- -1
				}
				<-ctx.Done()
				return nil, ctx.Err()
			}},
		},
		Streams: []grpc.StreamDesc{
			{StreamName: "Server", ServerStreams: true, Handler: func(_ any, st grpc.ServerStream) error {
				var in []byte
				if err := st.RecvMsg(&in); err != nil {
					return err
				}
				for i := range 5 {
					m := []byte(fmt.Sprintf("%s-%d", in, i))
					if err := st.SendMsg(&m); err != nil {
						return err
					}
				}
				return nil
			}},
			{StreamName: "Client", ClientStreams: true, Handler: func(_ any, st grpc.ServerStream) error {
				var all []byte
				for {
					var in []byte
					err := st.RecvMsg(&in)
					if err == io.EOF {
						return st.SendMsg(&all)
					}
					if err != nil {
						return err
					}
					all = append(all, in...)
				}
			}},
			{StreamName: "Bidi", ServerStreams: true, ClientStreams: true, Handler: func(_ any, st grpc.ServerStream) error {
				for {
					var in []byte
					err := st.RecvMsg(&in)
					if err == io.EOF {
						return nil
					}
					if err != nil {
						return err
					}
					out := append([]byte("echo:"), in...)
					if err := st.SendMsg(&out); err != nil {
						return err
					}
				}
			}},
		},
	}
}

func (e *echoService) unary(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	var in []byte
	if err := dec(&in); err != nil {
		return nil, err
	}
	md, _ := metadata.FromIncomingContext(ctx)
	grpc.SetHeader(ctx, metadata.Pairs("x-header", "h-"+strings.Join(md.Get("x-in"), ",")))
	grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "t-"+string(in)))
	out := append([]byte("hello "), in...)
	return &out, nil
}

// grpcOrigin starts a gRPC server (cleartext HTTP/2) on loopback.
func grpcOrigin(t *testing.T) (string, *echoService) {
	svc := &echoService{sawDeadline: make(chan time.Duration, 1)}
	s := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	s.RegisterService(svc.desc(), svc)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String(), svc
}

// TestGRPCThroughWeir drives a grpc-go client through Weir (TLS, ALPN
// h2) to a grpc-go server (h2c): every call kind, metadata, trailers,
// an error status, and a deadline that expires.
func TestGRPCThroughWeir(t *testing.T) {
	origin, svc := grpcOrigin(t)
	stls, ctls := testcert.TLSPair(t, []string{"h2", "http/1.1"}, "weir.test")
	_, addr := engineFront(t, &proxy.ListenerOptions{TLS: stls}, nil, upstream.ProtoH2, origin)
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(ctls)),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("unary with metadata and trailers", func(t *testing.T) {
		in, out := []byte("weir"), []byte(nil)
		var hdr, trl metadata.MD
		ctx := metadata.AppendToOutgoingContext(ctx, "x-in", "abc")
		if err := cc.Invoke(ctx, "/weir.test.Echo/Unary", &in, &out, grpc.Header(&hdr), grpc.Trailer(&trl)); err != nil {
			t.Fatal(err)
		}
		if string(out) != "hello weir" || strings.Join(hdr.Get("x-header"), "") != "h-abc" || strings.Join(trl.Get("x-trailer"), "") != "t-weir" {
			t.Fatalf("out %q header %v trailer %v", out, hdr, trl)
		}
	})
	t.Run("error status with message", func(t *testing.T) {
		in, out := []byte("x"), []byte(nil)
		var trl metadata.MD
		err := cc.Invoke(ctx, "/weir.test.Echo/Fail", &in, &out, grpc.Trailer(&trl))
		st, _ := status.FromError(err)
		if st.Code() != codes.NotFound || st.Message() != "no such thing: x" || strings.Join(trl.Get("x-why"), "") != "because" {
			t.Fatalf("got %v, trailer %v", err, trl)
		}
	})
	t.Run("server streaming", func(t *testing.T) {
		st, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/weir.test.Echo/Server")
		if err != nil {
			t.Fatal(err)
		}
		in := []byte("s")
		st.SendMsg(&in)
		st.CloseSend()
		var got []string
		for {
			var m []byte
			if err := st.RecvMsg(&m); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(m))
		}
		if strings.Join(got, ",") != "s-0,s-1,s-2,s-3,s-4" {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("client streaming", func(t *testing.T) {
		st, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/weir.test.Echo/Client")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"a", "b", "c"} {
			m := []byte(p)
			if err := st.SendMsg(&m); err != nil {
				t.Fatal(err)
			}
		}
		st.CloseSend()
		var out []byte
		if err := st.RecvMsg(&out); err != nil || string(out) != "abc" {
			t.Fatalf("got %q, %v", out, err)
		}
	})
	t.Run("bidirectional streaming", func(t *testing.T) {
		st, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, "/weir.test.Echo/Bidi")
		if err != nil {
			t.Fatal(err)
		}
		// Each reply comes back before the next message is sent: the
		// streams are really full duplex through Weir.
		for i := range 3 {
			m := []byte(fmt.Sprint(i))
			if err := st.SendMsg(&m); err != nil {
				t.Fatal(err)
			}
			var out []byte
			if err := st.RecvMsg(&out); err != nil || string(out) != "echo:"+fmt.Sprint(i) {
				t.Fatalf("got %q, %v", out, err)
			}
		}
		st.CloseSend()
		var m []byte
		if err := st.RecvMsg(&m); err != io.EOF {
			t.Fatalf("end of stream: %v", err)
		}
	})
	t.Run("deadline expires", func(t *testing.T) {
		dctx, dcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer dcancel()
		in, out := []byte("slow"), []byte(nil)
		err := cc.Invoke(dctx, "/weir.test.Echo/Slow", &in, &out)
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("got %v, want DeadlineExceeded", err)
		}
		// grpc-timeout reached the server: it saw a deadline of at most
		// what the client set.
		if d := <-svc.sawDeadline; d <= 0 || d > 300*time.Millisecond {
			t.Fatalf("server saw deadline %v", d)
		}
	})
}

// grpcWebFrame frames one message as gRPC-Web does (like gRPC).
func grpcWebFrame(flag byte, msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	b[0] = flag
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// parseGRPCWeb splits a gRPC-Web response body into messages and the
// trailer frame's fields.
func parseGRPCWeb(t *testing.T, body []byte) (msgs []string, trailers map[string]string) {
	trailers = map[string]string{}
	for len(body) > 0 {
		if len(body) < 5 {
			t.Fatalf("truncated frame header %q", body)
		}
		n := int(binary.BigEndian.Uint32(body[1:5]))
		if len(body) < 5+n {
			t.Fatalf("truncated frame")
		}
		payload := body[5 : 5+n]
		if body[0]&0x80 != 0 {
			for _, line := range strings.Split(strings.TrimSpace(string(payload)), "\r\n") {
				k, v, _ := strings.Cut(line, ":")
				trailers[k] = strings.TrimSpace(v)
			}
		} else {
			msgs = append(msgs, string(payload))
		}
		body = body[5+n:]
	}
	return msgs, trailers
}

// TestGRPCWebOverHTTP1 sends gRPC-Web requests over HTTP/1.1, binary and
// text, to a gRPC server through Weir and decodes the answers.
func TestGRPCWebOverHTTP1(t *testing.T) {
	origin, _ := grpcOrigin(t)
	_, addr := engineFront(t, nil, func(r *proxy.Route) { r.GRPCWeb = true }, upstream.ProtoH2, origin)
	c := &http.Client{Transport: &http.Transport{}}

	post := func(ctype string, body []byte) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/weir.test.Echo/Unary", bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("X-Grpc-Web", "1")
		req.Header.Set("X-In", "web")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != 1 {
			t.Fatalf("not HTTP/1.1: %s", resp.Proto)
		}
		return resp, b
	}

	resp, body := post("application/grpc-web+raw", grpcWebFrame(0, []byte("browser")))
	if ct := resp.Header.Get("Content-Type"); ct != "application/grpc-web+raw" {
		t.Fatalf("content-type %q", ct)
	}
	msgs, tr := parseGRPCWeb(t, body)
	if len(msgs) != 1 || msgs[0] != "hello browser" || tr["grpc-status"] != "0" || tr["x-trailer"] != "t-browser" {
		t.Fatalf("binary: messages %q trailers %v", msgs, tr)
	}
	if h := resp.Header.Get("X-Header"); h != "h-web" {
		t.Fatalf("header metadata %q", h)
	}

	// Text mode: base64 both ways.
	resp, body = post("application/grpc-web-text+raw", []byte(base64.StdEncoding.EncodeToString(grpcWebFrame(0, []byte("text")))))
	if ct := resp.Header.Get("Content-Type"); ct != "application/grpc-web-text+raw" {
		t.Fatalf("content-type %q", ct)
	}
	var dec []byte
	// The body is a sequence of padded base64 pieces.
	for s := string(body); len(s) > 0; {
		i := strings.Index(s, "=")
		piece := s
		if i >= 0 {
			j := i
			for j < len(s) && s[j] == '=' {
				j++
			}
			piece, s = s[:j], s[j:]
		} else {
			s = ""
		}
		d, err := base64.StdEncoding.DecodeString(piece)
		if err != nil {
			t.Fatalf("text body %q: %v", body, err)
		}
		dec = append(dec, d...)
	}
	msgs, tr = parseGRPCWeb(t, dec)
	if len(msgs) != 1 || msgs[0] != "hello text" || tr["grpc-status"] != "0" {
		t.Fatalf("text: messages %q trailers %v", msgs, tr)
	}

	// An error status arrives in the trailer frame.
	req, _ := http.NewRequest("POST", "http://"+addr+"/weir.test.Echo/Fail", bytes.NewReader(grpcWebFrame(0, []byte("y"))))
	req.Header.Set("Content-Type", "application/grpc-web+raw")
	r2, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	_, tr = parseGRPCWeb(t, b2)
	gs := tr["grpc-status"]
	if gs == "" {
		gs = r2.Header.Get("Grpc-Status") // a trailers-only answer
	}
	if gs != fmt.Sprint(int(codes.NotFound)) {
		t.Fatalf("error status %q (trailers %v, header %v)", gs, tr, r2.Header)
	}
}
