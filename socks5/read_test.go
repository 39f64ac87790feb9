package socks5

import (
	"bytes"
	"errors"
	"io"
	"net"
	"reflect"
	"testing"
	"testing/iotest"
	"time"
)

// readers pairs each parser with its Read function, returning the same
// shapes as the parse*Case helpers.
var readers = map[string]func(io.Reader) (any, error){
	"greeting": func(r io.Reader) (any, error) {
		m, err := ReadGreeting(r)
		if err != nil {
			return nil, err
		}
		return greetingResult{m}, nil
	},
	"userpass": func(r io.Reader) (any, error) {
		u, p, err := ReadUserPass(r)
		if err != nil {
			return nil, err
		}
		return userPass{u, p}, nil
	},
	"request": func(r io.Reader) (any, error) {
		req, err := ReadRequest(r)
		if err != nil {
			return nil, err
		}
		return req, nil
	},
	"reply": func(r io.Reader) (any, error) {
		c, a, err := ReadReply(r)
		if err != nil {
			return nil, err
		}
		return reply{c, a}, nil
	},
}

// wantRead is what a Read function must return for a parse case read from
// a stream that ends after the case's bytes.
func wantRead(c parseCase) error {
	if !errors.Is(c.err, ErrIncomplete) {
		return c.err
	}
	if len(c.in) == 0 {
		return io.EOF
	}
	return io.ErrUnexpectedEOF
}

// TestReadOneByteAtATime reads every case through a reader that returns one
// byte per call, and checks that a Read function stops exactly at the end
// of the message.
func TestReadOneByteAtATime(t *testing.T) {
	for _, p := range parsers {
		read := readers[p.name]
		if read == nil {
			continue
		}
		for _, c := range p.cases() {
			t.Run(p.name+"/"+c.name, func(t *testing.T) {
				src := bytes.NewReader(c.in)
				got, err := read(iotest.OneByteReader(src))
				if want := wantRead(c); !errors.Is(err, want) || (want == nil && err != nil) {
					t.Fatalf("err = %v, want %v", err, want)
				}
				if !reflect.DeepEqual(got, c.want) {
					t.Fatalf("got %+v, want %+v", got, c.want)
				}
				if c.err == nil && src.Len() != len(c.in)-c.n {
					t.Fatalf("read %d bytes of a %d-byte message", len(c.in)-src.Len(), c.n)
				}
			})
		}
	}
}

// TestReadWholeReader reads every case from a reader that returns as much
// as it is asked for: the Read function must still not read past the
// message.
func TestReadWholeReader(t *testing.T) {
	for _, p := range parsers {
		read := readers[p.name]
		if read == nil {
			continue
		}
		for _, c := range p.cases() {
			if c.err != nil {
				continue
			}
			t.Run(p.name+"/"+c.name, func(t *testing.T) {
				src := bytes.NewReader(c.in)
				got, err := read(src)
				if err != nil || !reflect.DeepEqual(got, c.want) {
					t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
				}
				if rest := src.Len(); rest != len(c.in)-c.n {
					t.Fatalf("%d bytes left, want %d", rest, len(c.in)-c.n)
				}
			})
		}
	}
}

// TestReadByteAtATimeOverPipe writes each valid message followed by tunnel
// bytes one byte per Write through net.Pipe, and checks the tunnel bytes
// are still there after the Read function returns.
func TestReadByteAtATimeOverPipe(t *testing.T) {
	for _, p := range parsers {
		read := readers[p.name]
		if read == nil {
			continue
		}
		for _, c := range p.cases() {
			if c.err != nil {
				continue
			}
			t.Run(p.name+"/"+c.name, func(t *testing.T) {
				a, b := net.Pipe()
				defer a.Close()
				defer b.Close()
				deadline(t, a, b)
				msg := append(bytes.Clone(c.in[:c.n]), "TUNNEL"...)
				go func() {
					for i := range msg {
						if _, err := b.Write(msg[i : i+1]); err != nil {
							return
						}
					}
				}()
				got, err := read(a)
				if err != nil || !reflect.DeepEqual(got, c.want) {
					t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
				}
				rest := make([]byte, 6)
				if _, err := io.ReadFull(a, rest); err != nil || string(rest) != "TUNNEL" {
					t.Fatalf("after the message: %q, %v", rest, err)
				}
			})
		}
	}
}

// TestReadByteAtATimeOverTCP does the same over a loopback TCP connection
// with Nagle's algorithm off, so most bytes travel in their own segment.
func TestReadByteAtATimeOverTCP(t *testing.T) {
	client, server := tcpPair(t)
	msgs := [][]byte{
		cat(5, 2, 0, 2),
		cat(1, 5, "alice", 6, "secret"),
		domainMsg([]byte{5, 1, 0}, "example.com", 443),
		cat(5, 1, 0, 4, ip("::1").AsSlice(), 0, 80),
		[]byte("TUNNEL"),
	}
	go func() {
		for _, m := range msgs {
			for i := range m {
				if _, err := client.Write(m[i : i+1]); err != nil {
					return
				}
			}
		}
	}()
	m, err := ReadGreeting(server)
	if err != nil || !reflect.DeepEqual(m, []Method{MethodNoAuth, MethodUserPass}) {
		t.Fatalf("greeting %v, %v", m, err)
	}
	u, pw, err := ReadUserPass(server)
	if err != nil || u != "alice" || pw != "secret" {
		t.Fatalf("user/pass %q %q, %v", u, pw, err)
	}
	req, err := ReadRequest(server)
	if err != nil || req.Dst != (Addr{Name: "example.com", Port: 443}) {
		t.Fatalf("request %+v, %v", req, err)
	}
	req, err = ReadRequest(server)
	if err != nil || req.Dst != (Addr{IP: ip("::1"), Port: 80}) {
		t.Fatalf("request %+v, %v", req, err)
	}
	rest := make([]byte, 6)
	if _, err := io.ReadFull(server, rest); err != nil || string(rest) != "TUNNEL" {
		t.Fatalf("after the messages: %q, %v", rest, err)
	}
}

// TestReadRejectsEarly checks that a Read function reports a wrong
// version as soon as the first byte arrives, without waiting for more
// bytes the client may never send.
func TestReadRejectsEarly(t *testing.T) {
	for name, first := range map[string][]byte{"greeting": {4}, "userpass": {5}, "request": {4}, "reply": {0}} {
		t.Run(name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			deadline(t, a, b)
			go b.Write(first)
			if _, err := readers[name](a); !errors.Is(err, ErrVersion) {
				t.Fatalf("err = %v, want ErrVersion", err)
			}
		})
	}
	t.Run("domain", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		deadline(t, a, b)
		go b.Write(cat(5, 1, 0, 3, 200, "evil\n"))
		if _, err := ReadRequest(iotest.OneByteReader(a)); !errors.Is(err, ErrDomain) {
			t.Fatalf("err = %v, want ErrDomain", err)
		}
	})
}

func TestReadErrors(t *testing.T) {
	boom := errors.New("boom")
	if _, err := ReadRequest(iotest.ErrReader(boom)); err != boom {
		t.Errorf("read error: %v", err)
	}
	if _, err := ReadGreeting(io.MultiReader(bytes.NewReader([]byte{5}), iotest.ErrReader(boom))); err != boom {
		t.Errorf("read error after a byte: %v", err)
	}
	if _, err := ReadGreeting(iotest.DataErrReader(bytes.NewReader(cat(5, 1, 0)))); err != nil {
		t.Errorf("data with EOF: %v", err)
	}
	if _, err := ReadGreeting(emptyReader{}); err != io.ErrNoProgress {
		t.Errorf("empty reads: %v", err)
	}
}

// emptyReader returns neither bytes nor an error.
type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

// deadline bounds a test's blocking I/O on conns.
func deadline(t *testing.T, conns ...net.Conn) {
	t.Helper()
	d := time.Now().Add(10 * time.Second)
	for _, c := range conns {
		if err := c.SetDeadline(d); err != nil {
			t.Fatal(err)
		}
	}
}

// tcpPair returns both ends of a loopback TCP connection with Nagle's
// algorithm off and a deadline set.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.AcceptTCP()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	client.SetNoDelay(true)
	server.SetNoDelay(true)
	deadline(t, client, server)
	return client, server
}
