package proxyauth

import (
	"encoding/base64"
	"testing"
)

func basic(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestParseProxyAuthorization(t *testing.T) {
	good := []struct{ value, user, pass string }{
		{"Basic " + basic("alice:secret"), "alice", "secret"},
		{"basic " + basic("alice:secret"), "alice", "secret"},
		{"BASIC " + basic("alice:secret"), "alice", "secret"},
		{"bAsIc " + basic("alice:secret"), "alice", "secret"},
		{"Basic    " + basic("alice:secret"), "alice", "secret"},
		{" \tBasic " + basic("alice:secret") + " \t", "alice", "secret"},
		{"Basic " + basic("alice:"), "alice", ""},
		{"Basic " + basic("alice:pa:ss:"), "alice", "pa:ss:"},
		{"Basic " + basic("zoë:pässwörd"), "zoë", "pässwörd"},
		{"Basic " + basic("a:b"), "a", "b"},     // one padding byte
		{"Basic " + basic("ab:cd"), "ab", "cd"}, // none
		{"Basic " + basic("a:bc"), "a", "bc"},   // two
		{"Basic " + basic("user name:pass word"), "user name", "pass word"},
	}
	for _, c := range good {
		user, pass, ok := ParseProxyAuthorization([]byte(c.value))
		if !ok || user != c.user || pass != c.pass {
			t.Errorf("%q: (%q, %q, %v), want (%q, %q, true)", c.value, user, pass, ok, c.user, c.pass)
		}
	}
	long := make([]byte, MaxAuthorizationLength)
	for i := range long {
		long[i] = 'A'
	}
	bad := []string{
		"",
		"Basic",
		"Basic ",
		"Basic  ",
		"Basic" + basic("alice:secret"),
		"Basic\t" + basic("alice:secret"),
		"Basically " + basic("alice:secret"),
		"Bearer " + basic("alice:secret"),
		"Digest username=\"alice\"",
		"Negotiate YIIB",
		basic("alice:secret"),
		"Basic " + basic("alicesecret"),      // no colon
		"Basic " + basic(":secret"),          // empty user
		"Basic " + basic("al\x00ice:secret"), // control characters
		"Basic " + basic("alice:sec\nret"),
		"Basic " + basic("alice:sec\x7fret"),
		"Basic YWxpY2U6c2VjcmV",          // cut: bad length
		"Basic YWxpY2U6c2VjcmV0=",        // bad padding
		"Basic YWxpY2U6c2VjcmV0==",       // bad padding
		"Basic YWxpY2U6c2VjcmV0ZA",       // missing padding
		"Basic YWxpY2U6c2VjcmV0ZB==",     // non-zero trailing bits
		"Basic YWxp\r\nY2U6c2VjcmV0ZA==", // line break inside
		"Basic YWxp Y2U6c2VjcmV0ZA==",    // space inside
		"Basic YWxpY2U6c2VjcmV0ZA== x",   // something after
		"Basic YWxpY2U6c2VjcmV0ZA==,Basic YWxpY2U6c2VjcmV0ZA==", // two credentials
		"Basic YWxp=2U6c2VjcmV0ZA==",                            // padding inside
		"Basic YWxpY2U6c2VjcmV0ZA-_",                            // URL alphabet
		"Basic " + basic("alice:secret") + "\x00",
		"Basic " + string(long),
	}
	for _, v := range bad {
		if user, pass, ok := ParseProxyAuthorization([]byte(v)); ok {
			t.Errorf("%q accepted as (%q, %q)", v, user, pass)
		}
	}
}

func TestChallenge(t *testing.T) {
	for realm, want := range map[string]string{
		"":              DefaultChallenge,
		"weir":          `Basic realm="weir", charset="UTF-8"`,
		"Corp proxy":    `Basic realm="Corp proxy", charset="UTF-8"`,
		"Zürich egress": `Basic realm="Zürich egress", charset="UTF-8"`,
	} {
		got, err := Challenge(realm)
		if err != nil || got != want {
			t.Errorf("Challenge(%q) = %q, %v; want %q", realm, got, err, want)
		}
	}
	for _, realm := range []string{`a"b`, `a\b`, "a\rb", "a\nb", "a\r\nX-Injected: 1", "a\x00", "a\x7f", "a\tb", "\xff"} {
		if got, err := Challenge(realm); err == nil {
			t.Errorf("Challenge(%q) = %q, want an error", realm, got)
		}
	}
}
