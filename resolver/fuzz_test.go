package resolver

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// FuzzParseResponse feeds arbitrary bytes to the code that reads answers
// from nameservers and DoH servers: it must never panic, and whatever it
// accepts must be a consistent answer to the question asked. The question
// is "example.test." and the ID is taken from the message itself, so the
// fuzzer gets past the ID check. Seeds are in
// testdata/fuzz/FuzzParseResponse.
func FuzzParseResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg []byte) {
		var id uint16
		if len(msg) >= 2 {
			id = binary.BigEndian.Uint16(msg)
		}
		for _, fam := range []Family{IPv4, IPv6} {
			q, err := newQuestion("example.test", fam)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := parseResponse(msg, id, q)
			if err != nil {
				continue
			}
			if resp.truncated && len(resp.addrs) > 0 {
				t.Fatal("addresses taken from a truncated answer")
			}
			ans, err := resp.answer()
			if err != nil {
				if !errors.Is(err, ErrServerFailure) {
					t.Fatalf("answer error %v does not wrap ErrServerFailure", err)
				}
				continue
			}
			if ans.NXDomain && len(ans.Addrs) > 0 {
				t.Fatal("NXDOMAIN with addresses")
			}
			if ans.TTL > (1<<31-1)*time.Second {
				t.Fatalf("TTL %v above the RFC 2181 bound", ans.TTL)
			}
			for _, a := range ans.Addrs {
				if (fam == IPv4) != a.Is4() {
					t.Fatalf("%s answer holds %v", fam, a)
				}
			}
		}
	})
}
