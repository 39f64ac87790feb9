package socks5

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
)

// The fuzz targets check, for any input, that a parser does not panic,
// takes no more bytes than it was given (none with an error), that what it
// accepts is accepted whole and not before its last byte, that the
// matching Read function agrees with it and stops at the message's end,
// and that building what was parsed gives bytes that parse to the same
// value. Seeds live in testdata/fuzz/<target>/.

// checkParse checks the properties shared by every parser. parse returns
// the parsed value (nil with an error). read, when not nil, reads the same
// message from a stream.
func checkParse(t *testing.T, data []byte, parse func([]byte) (any, int, error), read func(io.Reader) (any, error)) (any, int) {
	t.Helper()
	in := bytes.Clone(data)
	v, n, err := parse(data)
	if !bytes.Equal(in, data) {
		t.Fatal("the parser modified its input")
	}
	if err != nil {
		if n != 0 || v != nil {
			t.Fatalf("n = %d, value %+v with error %v", n, v, err)
		}
	} else if n <= 0 || n > len(data) {
		t.Fatalf("n = %d of %d bytes", n, len(data))
	}
	if err == nil {
		// Not accepted before its last byte.
		if _, m, perr := parse(data[:n-1]); !errors.Is(perr, ErrIncomplete) || m != 0 {
			t.Fatalf("prefix of %d bytes: n = %d, err %v; want ErrIncomplete", n-1, m, perr)
		}
		// Not changed by what follows it (for a datagram, only the
		// payload is).
		v2, n2, err2 := parse(append(data[:n:n], 0xff, 0))
		if err2 != nil || n2 != n || (read != nil && !reflect.DeepEqual(v, v2)) {
			t.Fatalf("with bytes after it: %+v, %d, %v", v2, n2, err2)
		}
	}
	if read != nil {
		src := bytes.NewReader(data)
		rv, rerr := read(iotest.OneByteReader(src))
		switch {
		case err == nil:
			if rerr != nil || !reflect.DeepEqual(rv, v) {
				t.Fatalf("Read: %+v, %v; Parse: %+v", rv, rerr, v)
			}
			if used := len(data) - src.Len(); used != n {
				t.Fatalf("Read took %d bytes of a %d-byte message", used, n)
			}
		case errors.Is(err, ErrIncomplete):
			if !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
				t.Fatalf("Read of an incomplete message: %v", rerr)
			}
		default:
			if !errors.Is(rerr, err) {
				t.Fatalf("Read: %v; Parse: %v", rerr, err)
			}
		}
	}
	return v, n
}

func FuzzGreeting(f *testing.F) {
	f.Add([]byte{5, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, n := checkParse(t, data, parseGreetingCase, readers["greeting"])
		if v == nil {
			return
		}
		b, err := AppendGreeting(nil, v.(greetingResult).Methods...)
		if err != nil || !bytes.Equal(b, data[:n]) {
			t.Fatalf("rebuilt %q, %v; parsed %q", b, err, data[:n])
		}
	})
}

func FuzzUserPass(f *testing.F) {
	f.Add([]byte("\x01\x05alice\x06secret"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, n := checkParse(t, data, parseUserPassCase, readers["userpass"])
		if v == nil {
			return
		}
		up := v.(userPass)
		b, err := AppendUserPass(nil, up.User, up.Pass)
		if err != nil || !bytes.Equal(b, data[:n]) {
			t.Fatalf("rebuilt %q, %v; parsed %q", b, err, data[:n])
		}
	})
}

// checkAddr checks what the parsers promise about an address.
func checkAddr(t *testing.T, a Addr) {
	t.Helper()
	if a.IP.IsValid() == (a.Name != "") {
		t.Fatalf("address %+v holds both or neither of an IP and a name", a)
	}
	if a.IP.Is4In6() || a.IP.Zone() != "" {
		t.Fatalf("address %v is not normalised", a.IP)
	}
	if a.Name != "" {
		if ip, err := checkName(a.Name); err != nil || ip.IsValid() {
			t.Fatalf("name %q passed the parser but not checkName: %v, %v", a.Name, ip, err)
		}
	}
	if back, err := ParseHostPort(a.String()); err != nil || back != a {
		t.Fatalf("ParseHostPort(%q) = %+v, %v", a.String(), back, err)
	}
}

func FuzzRequest(f *testing.F) {
	f.Add([]byte("\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, _ := checkParse(t, data, parseRequestCase, readers["request"])
		if v == nil {
			return
		}
		req := v.(Request)
		checkAddr(t, req.Dst)
		b, err := AppendRequest(nil, req.Cmd, req.Dst)
		if err != nil {
			t.Fatalf("rebuilding %+v: %v", req, err)
		}
		again, n, err := ParseRequest(b)
		if err != nil || n != len(b) || again != req {
			t.Fatalf("rebuilt %q parses to %+v, %d, %v; want %+v", b, again, n, err, req)
		}
	})
}

func FuzzReply(f *testing.F) {
	f.Add([]byte("\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x50"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, _ := checkParse(t, data, parseReplyCase, readers["reply"])
		if v == nil {
			return
		}
		r := v.(reply)
		checkAddr(t, r.Bound)
		b, err := AppendReply(nil, r.Code, r.Bound)
		if err != nil {
			t.Fatalf("rebuilding %+v: %v", r, err)
		}
		c, a, n, err := ParseReply(b)
		if err != nil || n != len(b) || c != r.Code || a != r.Bound {
			t.Fatalf("rebuilt %q parses to %v %+v, %d, %v; want %+v", b, c, a, n, err, r)
		}
	})
}

func FuzzUDPHeader(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x01\x7f\x00\x00\x01\x00\x35query"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, n := checkParse(t, data, parseUDPCase, nil)
		if v == nil {
			return
		}
		d := v.(datagram)
		checkAddr(t, d.Dst)
		if d.Payload != string(data[n:]) {
			t.Fatalf("payload %q, want %q", d.Payload, data[n:])
		}
		b, err := AppendUDPHeader(nil, d.Dst)
		if err != nil {
			t.Fatalf("rebuilding %+v: %v", d.Dst, err)
		}
		b = append(b, d.Payload...)
		a, hl, err := ParseUDPHeader(b)
		if err != nil || a != d.Dst || string(b[hl:]) != d.Payload {
			t.Fatalf("rebuilt %q parses to %+v, %d, %v; want %+v", b, a, hl, err, d)
		}
	})
}
