package proxyauth

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseProxyAuthorization: no value makes the parser panic, and what
// it accepts is a user and password that encode back to a value it reads
// the same way. Seeds are in testdata/fuzz/FuzzParseProxyAuthorization.
func FuzzParseProxyAuthorization(f *testing.F) {
	f.Fuzz(func(t *testing.T, value []byte) {
		user, pass, ok := ParseProxyAuthorization(value)
		if !ok {
			if user != "" || pass != "" {
				t.Fatal("credentials returned with ok false")
			}
			return
		}
		if user == "" || strings.Contains(user, ":") || hasControl(user) || hasControl(pass) {
			t.Fatalf("accepted user %q, password %q", user, pass)
		}
		again := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
		u2, p2, ok2 := ParseProxyAuthorization([]byte(again))
		if !ok2 || u2 != user || p2 != pass {
			t.Fatalf("%q read back as (%q, %q, %v)", again, u2, p2, ok2)
		}
	})
}

// hashWindow is the length of the stretches of a hash FuzzParseUsers
// looks for in errors.
const hashWindow = 10

// reasonWording holds the reasons parseHash gives, one per way a hash can
// be wrong, so that FuzzParseUsers can tell their fixed wording from a
// repeated hash.
var reasonWording = func() string {
	b := "$2a$04$" + strings.Repeat("a", 53)
	a := "$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZg"
	var out strings.Builder
	for _, h := range []string{
		"", "x", "$2x$", "$argon2i$", b[:59], b[:4] + "1x" + b[6:], b[:4] + "99" + b[6:], b[:10] + "!" + b[11:],
		"$argon2id$", strings.Replace(a, "v=19", "v=1", 1), strings.Replace(a, "m=64,", "", 1),
		strings.Replace(a, "t=1", "t=0", 1), strings.Replace(a, "p=1", "p=0", 1), strings.Replace(a, "m=64", "m=1", 1),
		strings.Replace(a, "$MDEyMzQ1Njc4OWFiY2RlZg$", "$!$", 1), strings.Replace(a, "$MDEyMzQ1Njc4OWFiY2RlZg$", "$MDEy$", 1),
		a + "!", a[:len(a)-4],
	} {
		if _, err := parseHash(h); err != nil {
			out.WriteString(digitsAsHash(err.Error()) + "\n")
		}
	}
	return out.String()
}()

// FuzzParseUsers: no file makes the parser panic; a refused file gets a
// *ParseError at a line that exists, which does not repeat the hash of
// that line; an accepted file holds only valid names. Seeds are in
// testdata/fuzz/FuzzParseUsers.
func FuzzParseUsers(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := parseUsers("users", data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			lines := strings.Split(string(data), "\n")
			if pe.Line < 1 || pe.Line > len(lines) {
				t.Fatalf("error at line %d of %d", pe.Line, len(lines))
			}
			line := strings.Trim(lines[pe.Line-1], " \t\r")
			if name, hash, ok := strings.Cut(line, ":"); ok {
				// No stretch of the hash may show in the reason, unless it
				// is also in the user name or in the fixed wording of the
				// reasons. Numbers (the cost and parameters, which are not
				// secret) may.
				// The reason names the user, quoted: that is not the hash
				// showing, even where the two look alike.
				reason := strings.ReplaceAll(pe.Reason, strconv.Quote(name), "")
				hash, reason, name := digitsAsHash(hash), digitsAsHash(reason), digitsAsHash(name)
				for i := 0; i+hashWindow <= len(hash); i++ {
					w := hash[i : i+hashWindow]
					if strings.Contains(reason, w) && !strings.Contains(name, w) && !strings.Contains(reasonWording, w) {
						t.Fatalf("error %q repeats %q of the hash", err, w)
					}
				}
			}
			return
		}
		for name := range tab.users {
			if checkUserName(name) != nil || strings.Contains(name, ":") || !utf8.ValidString(name) {
				t.Fatalf("accepted user name %q", name)
			}
		}
		if (tab.dummy == nil) != (len(tab.users) == 0) {
			t.Fatal("dummy credential out of step with the users")
		}
	})
}

// digitsAsHash replaces each run of digits in s with one '#'.
func digitsAsHash(s string) string {
	var b strings.Builder
	digits := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if '0' <= c && c <= '9' {
			if !digits {
				b.WriteByte('#')
			}
			digits = true
			continue
		}
		digits = false
		b.WriteByte(c)
	}
	return b.String()
}
