package socks5

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// parseCase is one input to a parser and what the parser must say.
type parseCase struct {
	name string
	in   []byte
	want any   // the parsed value; nil when err is set
	n    int   // bytes consumed; 0 with an error
	err  error // nil, ErrIncomplete or a protocol error
}

// cat joins byte slices and strings into one message.
func cat(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case []byte:
			b = append(b, p...)
		case string:
			b = append(b, p...)
		case byte:
			b = append(b, p)
		case int:
			b = append(b, byte(p))
		case rune:
			b = append(b, byte(p))
		case Command:
			b = append(b, byte(p))
		default:
			panic("cat: unexpected part")
		}
	}
	return b
}

func domainMsg(prefix []byte, name string, port uint16) []byte {
	return cat(prefix, 3, len(name), name, byte(port>>8), byte(port))
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// label returns a label of n letters.
func label(n int) string { return strings.Repeat("a", n) }

// longName returns a valid 255-byte name: three 63-byte labels and one of
// 63 bytes, joined by dots.
func longName() string {
	return label(63) + "." + label(63) + "." + label(63) + "." + label(63)
}

type greetingResult struct{ Methods []Method }

func greetingCases() []parseCase {
	all := make([]byte, 0, 257)
	all = append(all, 5, 255)
	allMethods := make([]Method, 255)
	for i := range 255 {
		all = append(all, byte(i))
		allMethods[i] = Method(i)
	}
	return []parseCase{
		{name: "no auth", in: cat(5, 1, 0), want: greetingResult{[]Method{MethodNoAuth}}, n: 3},
		{name: "no auth and user/pass", in: cat(5, 2, 0, 2), want: greetingResult{[]Method{MethodNoAuth, MethodUserPass}}, n: 4},
		{name: "255 methods", in: all, want: greetingResult{allMethods}, n: 257},
		{name: "followed by a request", in: cat(5, 1, 0, 5, 1, 0, 1), want: greetingResult{[]Method{MethodNoAuth}}, n: 3},
		{name: "empty", in: nil, err: ErrIncomplete},
		{name: "version only", in: cat(5), err: ErrIncomplete},
		{name: "short methods", in: cat(5, 3, 0, 2), err: ErrIncomplete},
		{name: "no methods", in: cat(5, 0), err: ErrNoMethods},
		{name: "no methods then more", in: cat(5, 0, 0, 0), err: ErrNoMethods},
		{name: "SOCKS4 CONNECT", in: cat(4, 1, 0, 80, 127, 0, 0, 1, "user", 0), err: ErrVersion},
		{name: "SOCKS4 first byte", in: cat(4), err: ErrVersion},
		{name: "HTTP GET", in: []byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), err: ErrVersion},
		{name: "HTTP CONNECT", in: []byte("CONNECT example.com:443 HTTP/1.1\r\n\r\n"), err: ErrVersion},
		{name: "TLS ClientHello", in: cat(0x16, 3, 1, 0, 0xc8, 1), err: ErrVersion},
		{name: "zero byte", in: cat(0), err: ErrVersion},
		{name: "0xff", in: cat(0xff, 1, 0), err: ErrVersion},
		{name: "version 6", in: cat(6, 1, 0), err: ErrVersion},
	}
}

func parseGreetingCase(b []byte) (any, int, error) {
	m, n, err := ParseGreeting(b)
	if err != nil {
		return nil, n, err
	}
	return greetingResult{m}, n, nil
}

type userPass struct{ User, Pass string }

func userPassCases() []parseCase {
	u255, p255 := label(255), strings.Repeat("p", 255)
	return []parseCase{
		{name: "simple", in: cat(1, 5, "alice", 6, "secret"), want: userPass{"alice", "secret"}, n: 14},
		{name: "one byte each", in: cat(1, 1, "a", 1, "b"), want: userPass{"a", "b"}, n: 5},
		{name: "longest", in: cat(1, 255, u255, 255, p255), want: userPass{u255, p255}, n: 513},
		{name: "binary password", in: cat(1, 1, "u", 3, 0, 0xff, '\n'), want: userPass{"u", "\x00\xff\n"}, n: 7},
		{name: "followed by a request", in: cat(1, 1, "u", 1, "p", 5, 1, 0), want: userPass{"u", "p"}, n: 5},
		{name: "empty", in: nil, err: ErrIncomplete},
		{name: "version only", in: cat(1), err: ErrIncomplete},
		{name: "short user", in: cat(1, 5, "ali"), err: ErrIncomplete},
		{name: "no PLEN", in: cat(1, 5, "alice"), err: ErrIncomplete},
		{name: "short password", in: cat(1, 5, "alice", 6, "sec"), err: ErrIncomplete},
		{name: "empty user", in: cat(1, 0, 1, "p"), err: ErrCredentialLen},
		{name: "empty password", in: cat(1, 1, "u", 0), err: ErrCredentialLen},
		{name: "SOCKS5 version", in: cat(5, 1, "u", 1, "p"), err: ErrVersion},
		{name: "version 0", in: cat(0), err: ErrVersion},
		{name: "HTTP", in: []byte("GET / HTTP/1.1\r\n"), err: ErrVersion},
	}
}

func parseUserPassCase(b []byte) (any, int, error) {
	u, p, n, err := ParseUserPass(b)
	if err != nil {
		return nil, n, err
	}
	return userPass{u, p}, n, nil
}

func requestCases() []parseCase {
	connect := []byte{5, 1, 0}
	r := func(cmd Command, a Addr) Request { return Request{Cmd: cmd, Dst: a} }
	return []parseCase{
		{name: "IPv4", in: cat(connect, 1, 127, 0, 0, 1, 0x1f, 0x90),
			want: r(Connect, Addr{IP: ip("127.0.0.1"), Port: 8080}), n: 10},
		{name: "IPv6", in: cat(connect, 4, ip("2001:db8::1").AsSlice(), 0, 80),
			want: r(Connect, Addr{IP: ip("2001:db8::1"), Port: 80}), n: 22},
		{name: "IPv4-mapped IPv6 is IPv4", in: cat(connect, 4, ip("::ffff:10.0.0.1").AsSlice(), 0, 80),
			want: r(Connect, Addr{IP: ip("10.0.0.1"), Port: 80}), n: 22},
		{name: "domain", in: domainMsg(connect, "example.com", 443),
			want: r(Connect, Addr{Name: "example.com", Port: 443}), n: 18},
		{name: "domain with trailing dot", in: domainMsg(connect, "example.com.", 443),
			want: r(Connect, Addr{Name: "example.com.", Port: 443}), n: 19},
		{name: "domain with underscores and hyphens", in: domainMsg(connect, "_sip._udp.my-host.example", 5060),
			want: r(Connect, Addr{Name: "_sip._udp.my-host.example", Port: 5060}), n: 4 + 1 + 25 + 2},
		{name: "single label", in: domainMsg(connect, "localhost", 1),
			want: r(Connect, Addr{Name: "localhost", Port: 1}), n: 16},
		{name: "longest domain", in: domainMsg(connect, longName(), 65535),
			want: r(Connect, Addr{Name: longName(), Port: 65535}), n: 4 + 1 + 255 + 2},
		{name: "dotted quad as domain is an address", in: domainMsg(connect, "192.0.2.7", 80),
			want: r(Connect, Addr{IP: ip("192.0.2.7"), Port: 80}), n: 4 + 1 + 9 + 2},
		{name: "BIND", in: cat(5, 2, 0, 1, 0, 0, 0, 0, 0, 0),
			want: r(Bind, Addr{IP: ip("0.0.0.0")}), n: 10},
		{name: "UDP ASSOCIATE", in: cat(5, 3, 0, 1, 0, 0, 0, 0, 0, 0),
			want: r(UDPAssociate, Addr{IP: ip("0.0.0.0")}), n: 10},
		{name: "followed by tunnel data", in: cat(connect, 1, 10, 1, 2, 3, 0, 22, "SSH-2.0"),
			want: r(Connect, Addr{IP: ip("10.1.2.3"), Port: 22}), n: 10},

		{name: "empty", in: nil, err: ErrIncomplete},
		{name: "no address type", in: cat(connect), err: ErrIncomplete},
		{name: "short IPv4", in: cat(connect, 1, 127, 0, 0), err: ErrIncomplete},
		{name: "no port", in: cat(connect, 1, 127, 0, 0, 1), err: ErrIncomplete},
		{name: "short IPv6", in: cat(connect, 4, make([]byte, 15)), err: ErrIncomplete},
		{name: "no domain length", in: cat(connect, 3), err: ErrIncomplete},
		{name: "short domain", in: cat(connect, 3, 11, "example"), err: ErrIncomplete},

		{name: "SOCKS4", in: cat(4, 1, 0, 80, 127, 0, 0, 1, 0), err: ErrVersion},
		{name: "HTTP", in: []byte("GET / HTTP/1.1\r\n"), err: ErrVersion},
		{name: "command 0", in: cat(5, 0, 0, 1, 127, 0, 0, 1, 0, 80), err: ErrCommandNotSupported},
		{name: "command 4", in: cat(5, 4, 0, 1, 127, 0, 0, 1, 0, 80), err: ErrCommandNotSupported},
		{name: "command 0xff", in: cat(5, 0xff), err: ErrCommandNotSupported},
		{name: "reserved not zero", in: cat(5, 1, 1, 1, 127, 0, 0, 1, 0, 80), err: ErrReserved},
		{name: "address type 0", in: cat(connect, 0, 127, 0, 0, 1, 0, 80), err: ErrAddressTypeNotSupported},
		{name: "address type 2", in: cat(connect, 2), err: ErrAddressTypeNotSupported},
		{name: "address type 5", in: cat(connect, 5, 0, 0), err: ErrAddressTypeNotSupported},
		{name: "address type 0xff", in: cat(connect, 0xff), err: ErrAddressTypeNotSupported},
		{name: "empty domain", in: cat(connect, 3, 0, 0, 80), err: ErrDomain},
		{name: "NUL in domain", in: domainMsg(connect, "evil\x00.com", 80), err: ErrDomain},
		{name: "NUL early in a short domain", in: cat(connect, 3, 20, "a\x00"), err: ErrDomain},
		{name: "newline in domain", in: domainMsg(connect, "a.com\r\nX-Injected: 1", 80), err: ErrDomain},
		{name: "space in domain", in: domainMsg(connect, "a b.com", 80), err: ErrDomain},
		{name: "slash in domain", in: domainMsg(connect, "a.com/x", 80), err: ErrDomain},
		{name: "colon in domain", in: domainMsg(connect, "a.com:80", 80), err: ErrDomain},
		{name: "IPv6 literal as domain", in: domainMsg(connect, "::1", 80), err: ErrDomain},
		{name: "percent in domain", in: domainMsg(connect, "a%2e.com", 80), err: ErrDomain},
		{name: "at sign in domain", in: domainMsg(connect, "user@a.com", 80), err: ErrDomain},
		{name: "UTF-8 in domain", in: domainMsg(connect, "b\xc3\xbccher.de", 80), err: ErrDomain},
		{name: "high byte in domain", in: domainMsg(connect, "a\xff.com", 80), err: ErrDomain},
		{name: "escape in domain", in: domainMsg(connect, "a\x1b[31m.com", 80), err: ErrDomain},
		{name: "empty label", in: domainMsg(connect, "a..com", 80), err: ErrDomain},
		{name: "leading dot", in: domainMsg(connect, ".a.com", 80), err: ErrDomain},
		{name: "only a dot", in: domainMsg(connect, ".", 80), err: ErrDomain},
		{name: "two trailing dots", in: domainMsg(connect, "a.com..", 80), err: ErrDomain},
		{name: "label of 64", in: domainMsg(connect, label(64)+".com", 80), err: ErrDomain},
		{name: "short IPv4 form", in: domainMsg(connect, "127.1", 80), err: ErrDomain},
		{name: "decimal IPv4 form", in: domainMsg(connect, "2130706433", 80), err: ErrDomain},
		{name: "hex IPv4 form", in: domainMsg(connect, "0x7f000001", 80), err: ErrDomain},
		{name: "hex last label", in: domainMsg(connect, "0x7f.0.0.0x1", 80), err: ErrDomain},
		{name: "octal IPv4 form", in: domainMsg(connect, "0177.0.0.01", 80), err: ErrDomain},
		{name: "numeric top-level domain", in: domainMsg(connect, "example.123", 80), err: ErrDomain},
		{name: "five numbers", in: domainMsg(connect, "1.2.3.4.5", 80), err: ErrDomain},
	}
}

func parseRequestCase(b []byte) (any, int, error) {
	r, n, err := ParseRequest(b)
	if err != nil {
		return nil, n, err
	}
	return r, n, nil
}

type reply struct {
	Code  ReplyCode
	Bound Addr
}

func replyCases() []parseCase {
	return []parseCase{
		{name: "succeeded", in: cat(5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90),
			want: reply{Succeeded, Addr{IP: ip("127.0.0.1"), Port: 8080}}, n: 10},
		{name: "refused", in: cat(5, 5, 0, 1, 0, 0, 0, 0, 0, 0),
			want: reply{ConnectionRefused, Addr{IP: ip("0.0.0.0")}}, n: 10},
		{name: "unassigned code", in: cat(5, 0x42, 0, 1, 0, 0, 0, 0, 0, 0),
			want: reply{0x42, Addr{IP: ip("0.0.0.0")}}, n: 10},
		{name: "IPv6", in: cat(5, 0, 0, 4, ip("::1").AsSlice(), 0, 1),
			want: reply{Succeeded, Addr{IP: ip("::1"), Port: 1}}, n: 22},
		{name: "domain", in: domainMsg([]byte{5, 0, 0}, "proxy.example", 1080),
			want: reply{Succeeded, Addr{Name: "proxy.example", Port: 1080}}, n: 20},
		{name: "short", in: cat(5, 0, 0, 1, 127), err: ErrIncomplete},
		{name: "version 4", in: cat(4, 0x5a), err: ErrVersion},
		{name: "reserved", in: cat(5, 0, 9), err: ErrReserved},
		{name: "address type", in: cat(5, 0, 0, 9), err: ErrAddressTypeNotSupported},
		{name: "bad domain", in: domainMsg([]byte{5, 0, 0}, "a b", 1), err: ErrDomain},
	}
}

func parseReplyCase(b []byte) (any, int, error) {
	c, a, n, err := ParseReply(b)
	if err != nil {
		return nil, n, err
	}
	return reply{c, a}, n, nil
}

type datagram struct {
	Dst     Addr
	Payload string
}

func udpCases() []parseCase {
	return []parseCase{
		{name: "IPv4", in: cat(0, 0, 0, 1, 127, 0, 0, 1, 0, 53, "query"),
			want: datagram{Addr{IP: ip("127.0.0.1"), Port: 53}, "query"}, n: 10},
		{name: "IPv6", in: cat(0, 0, 0, 4, ip("2001:db8::53").AsSlice(), 0, 53, "q"),
			want: datagram{Addr{IP: ip("2001:db8::53"), Port: 53}, "q"}, n: 22},
		{name: "domain", in: cat(domainMsg([]byte{0, 0, 0}, "dns.example", 53), "q"),
			want: datagram{Addr{Name: "dns.example", Port: 53}, "q"}, n: 4 + 1 + 11 + 2},
		{name: "empty payload", in: cat(0, 0, 0, 1, 10, 0, 0, 1, 1, 0),
			want: datagram{Addr{IP: ip("10.0.0.1"), Port: 256}, ""}, n: 10},
		{name: "empty", in: nil, err: ErrIncomplete},
		{name: "truncated address", in: cat(0, 0, 0, 1, 127, 0), err: ErrIncomplete},
		{name: "truncated port", in: cat(0, 0, 0, 1, 127, 0, 0, 1, 0), err: ErrIncomplete},
		{name: "first reserved byte", in: cat(1, 0, 0, 1, 127, 0, 0, 1, 0, 53), err: ErrReserved},
		{name: "second reserved byte", in: cat(0, 1, 0, 1, 127, 0, 0, 1, 0, 53), err: ErrReserved},
		{name: "fragment 1", in: cat(0, 0, 1, 1, 127, 0, 0, 1, 0, 53, "x"), err: ErrFragmented},
		{name: "last fragment", in: cat(0, 0, 0x81, 1, 127, 0, 0, 1, 0, 53, "x"), err: ErrFragmented},
		{name: "address type", in: cat(0, 0, 0, 2, 127, 0, 0, 1, 0, 53), err: ErrAddressTypeNotSupported},
		{name: "bad domain", in: cat(domainMsg([]byte{0, 0, 0}, "a\x00b", 53), "q"), err: ErrDomain},
		{name: "SOCKS5 request", in: cat(5, 1, 0, 1, 127, 0, 0, 1, 0, 53), err: ErrReserved},
	}
}

func parseUDPCase(b []byte) (any, int, error) {
	a, n, err := ParseUDPHeader(b)
	if err != nil {
		return nil, n, err
	}
	return datagram{a, string(b[n:])}, n, nil
}

type parser struct {
	name  string
	parse func([]byte) (any, int, error)
	cases func() []parseCase
}

var parsers = []parser{
	{"greeting", parseGreetingCase, greetingCases},
	{"userpass", parseUserPassCase, userPassCases},
	{"request", parseRequestCase, requestCases},
	{"reply", parseReplyCase, replyCases},
	{"udp", parseUDPCase, udpCases},
}

func TestParsers(t *testing.T) {
	for _, p := range parsers {
		for _, c := range p.cases() {
			t.Run(p.name+"/"+c.name, func(t *testing.T) {
				in := bytes.Clone(c.in)
				got, n, err := p.parse(in)
				if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				if n != c.n {
					t.Fatalf("n = %d, want %d", n, c.n)
				}
				if !reflect.DeepEqual(got, c.want) {
					t.Fatalf("got %+v, want %+v", got, c.want)
				}
				if !bytes.Equal(in, c.in) {
					t.Fatal("the parser modified its input")
				}
			})
		}
	}
}

// TestParsersEveryPrefix feeds every prefix of every case: a prefix of a
// valid message is incomplete, and a prefix of a malformed one is either
// incomplete or already the same error.
func TestParsersEveryPrefix(t *testing.T) {
	for _, p := range parsers {
		for _, c := range p.cases() {
			t.Run(p.name+"/"+c.name, func(t *testing.T) {
				end := len(c.in)
				if c.err == nil {
					end = c.n
				}
				for i := range end {
					got, n, err := p.parse(c.in[:i])
					if n != 0 || got != nil {
						t.Fatalf("prefix %d: n = %d, value %+v", i, n, got)
					}
					if errors.Is(err, ErrIncomplete) {
						continue
					}
					if c.err == nil || !errors.Is(err, c.err) {
						t.Fatalf("prefix %d: err = %v, want ErrIncomplete or %v", i, err, c.err)
					}
				}
			})
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, name := range []string{"a", "a.b", "A-Z.09_", "xn--bcher-kva.de", "_dmarc.example.com", "a.b.", "0x.example", "x0.1a", longName(), "1.2.3.4.example"} {
		if ip, err := checkName(name); err != nil || ip.IsValid() {
			t.Errorf("checkName(%q) = %v, %v; want a name", name, ip, err)
		}
	}
	for _, name := range []string{"", ".", "..", "a..b", ".a", "a-.b c", longName() + "a", label(64), "127.1", "1", "0x", "0X1F", "a.0xffffffff", "::1", "1.2.3.4%eth0", "*.example.com", "a\tb"} {
		if _, err := checkName(name); !errors.Is(err, ErrDomain) {
			t.Errorf("checkName(%q) = %v, want ErrDomain", name, err)
		}
	}
	for name, want := range map[string]string{"1.2.3.4": "1.2.3.4", "255.255.255.255.": "255.255.255.255", "0.0.0.0": "0.0.0.0"} {
		if ip, err := checkName(name); err != nil || ip != netip.MustParseAddr(want) {
			t.Errorf("checkName(%q) = %v, %v; want %s", name, ip, err, want)
		}
	}
}

func TestAppend(t *testing.T) {
	b, err := AppendGreeting([]byte("x"), MethodNoAuth, MethodUserPass)
	if err != nil || string(b) != "x\x05\x02\x00\x02" {
		t.Errorf("AppendGreeting = %q, %v", b, err)
	}
	b, err = AppendUserPass(nil, "alice", "pw")
	if err != nil || string(b) != "\x01\x05alice\x02pw" {
		t.Errorf("AppendUserPass = %q, %v", b, err)
	}
	b, err = AppendRequest(nil, Connect, Addr{IP: ip("::ffff:1.2.3.4"), Port: 258})
	if err != nil || string(b) != "\x05\x01\x00\x01\x01\x02\x03\x04\x01\x02" {
		t.Errorf("AppendRequest mapped = %q, %v", b, err)
	}
	b, err = AppendRequest(nil, UDPAssociate, Addr{Name: "a.example", Port: 53})
	if err != nil || string(b) != "\x05\x03\x00\x03\x09a.example\x00\x35" {
		t.Errorf("AppendRequest name = %q, %v", b, err)
	}
	b, err = AppendReply(nil, NotAllowed, Addr{IP: ip("2001:db8::1"), Port: 1})
	if err != nil || !bytes.Equal(b, cat(5, 2, 0, 4, ip("2001:db8::1").AsSlice(), 0, 1)) {
		t.Errorf("AppendReply = %q, %v", b, err)
	}
	b, err = AppendUDPHeader([]byte("x"), Addr{IP: ip("10.0.0.1"), Port: 53})
	if err != nil || string(b) != "x\x00\x00\x00\x01\x0a\x00\x00\x01\x00\x35" {
		t.Errorf("AppendUDPHeader = %q, %v", b, err)
	}

	dst := []byte("keep")
	fails := []struct {
		name string
		f    func() ([]byte, error)
		err  error
	}{
		{"no methods", func() ([]byte, error) { return AppendGreeting(dst) }, ErrNoMethods},
		{"256 methods", func() ([]byte, error) { return AppendGreeting(dst, make([]Method, 256)...) }, nil},
		{"empty user", func() ([]byte, error) { return AppendUserPass(dst, "", "p") }, ErrCredentialLen},
		{"empty password", func() ([]byte, error) { return AppendUserPass(dst, "u", "") }, ErrCredentialLen},
		{"long user", func() ([]byte, error) { return AppendUserPass(dst, label(256), "p") }, ErrCredentialLen},
		{"long password", func() ([]byte, error) { return AppendUserPass(dst, "u", label(256)) }, ErrCredentialLen},
		{"command 0", func() ([]byte, error) { return AppendRequest(dst, 0, Addr{IP: ip("1.2.3.4")}) }, ErrCommandNotSupported},
		{"command 4", func() ([]byte, error) { return AppendRequest(dst, 4, Addr{IP: ip("1.2.3.4")}) }, ErrCommandNotSupported},
		{"no address", func() ([]byte, error) { return AppendRequest(dst, Connect, Addr{Port: 1}) }, ErrAddress},
		{"bad name", func() ([]byte, error) { return AppendRequest(dst, Connect, Addr{Name: "a b"}) }, ErrDomain},
		{"long name", func() ([]byte, error) { return AppendUDPHeader(dst, Addr{Name: longName() + "a"}) }, ErrDomain},
		{"reply without address", func() ([]byte, error) { return AppendReply(dst, Succeeded, Addr{}) }, ErrAddress},
	}
	for _, f := range fails {
		b, err := f.f()
		if err == nil || (f.err != nil && !errors.Is(err, f.err)) {
			t.Errorf("%s: err = %v, want %v", f.name, err, f.err)
		}
		if string(b) != "keep" {
			t.Errorf("%s: dst changed to %q", f.name, b)
		}
	}
}

func TestParseHostPort(t *testing.T) {
	good := map[string]Addr{
		"example.com:443":        {Name: "example.com", Port: 443},
		"127.0.0.1:80":           {IP: ip("127.0.0.1"), Port: 80},
		"[::1]:0":                {IP: ip("::1")},
		"[::ffff:1.2.3.4]:65535": {IP: ip("1.2.3.4"), Port: 65535},
		"_srv.example.:1":        {Name: "_srv.example.", Port: 1},
	}
	for s, want := range good {
		if got, err := ParseHostPort(s); err != nil || got != want {
			t.Errorf("ParseHostPort(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{"example.com", "example.com:65536", "example.com:-1", "example.com:+1", "example.com:http", "[fe80::1%eth0]:80", "a b:80", ":80", "127.1:80", "[::1]:"} {
		if got, err := ParseHostPort(s); err == nil {
			t.Errorf("ParseHostPort(%q) = %+v, want an error", s, got)
		}
	}
}

func TestAddr(t *testing.T) {
	a := AddrFromAddrPort(netip.MustParseAddrPort("[::ffff:10.0.0.1]:53"))
	if a != (Addr{IP: ip("10.0.0.1"), Port: 53}) || a.String() != "10.0.0.1:53" || a.IsName() {
		t.Errorf("AddrFromAddrPort = %+v %q", a, a.String())
	}
	if ap, ok := a.AddrPort(); !ok || ap != netip.MustParseAddrPort("10.0.0.1:53") {
		t.Errorf("AddrPort = %v, %v", ap, ok)
	}
	n := Addr{Name: "example.com", Port: 80}
	if !n.IsName() || n.String() != "example.com:80" {
		t.Errorf("name Addr: %v %q", n.IsName(), n.String())
	}
	if _, ok := n.AddrPort(); ok {
		t.Error("AddrPort of a name reports ok")
	}
	if s := (Addr{IP: ip("::1"), Port: 1}).String(); s != "[::1]:1" {
		t.Errorf("IPv6 String = %q", s)
	}
}

func TestStrings(t *testing.T) {
	for v, want := range map[interface{ String() string }]string{
		Succeeded:               "succeeded",
		GeneralFailure:          "general SOCKS server failure",
		NotAllowed:              "connection not allowed by ruleset",
		NetworkUnreachable:      "network unreachable",
		HostUnreachable:         "host unreachable",
		ConnectionRefused:       "connection refused",
		TTLExpired:              "TTL expired",
		CommandNotSupported:     "command not supported",
		AddressTypeNotSupported: "address type not supported",
		ReplyCode(0x1f):         "reply code 0x1f",
		Connect:                 "CONNECT",
		Bind:                    "BIND",
		UDPAssociate:            "UDP ASSOCIATE",
		Command(0xab):           "command 0xab",
		MethodNoAuth:            "no authentication",
		MethodGSSAPI:            "GSS-API",
		MethodUserPass:          "username/password",
		MethodNoAcceptable:      "no acceptable methods",
		Method(0x80):            "method 0x80",
	} {
		if got := v.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", v, got, want)
		}
	}
	if s := (&ReplyError{Code: HostUnreachable}).Error(); s != "socks5: server replied host unreachable" {
		t.Errorf("ReplyError = %q", s)
	}
}
