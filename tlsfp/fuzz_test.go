package tlsfp

import (
	"errors"
	"regexp"
	"testing"
)

var (
	ja4Shape  = regexp.MustCompile(`^[tqd](13|12|11|10|s3|s2|d1|d2|d3|00)[di][0-9]{4}[0-9A-Za-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$`)
	ja3Shape  = regexp.MustCompile(`^[0-9]+(,([0-9]+(-[0-9]+)*)?){4}$`)
	hashShape = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// FuzzParseClientHello feeds arbitrary streams to the parsers. Properties:
// no panic; every error is one of the package's four kinds; feeding the
// stream in small pieces gives the same verdict as feeding it whole; and the
// fingerprints of any parsed hello are well formed. The seeds in
// testdata/fuzz/FuzzParseClientHello are Go client hellos (whole, in two
// records, without the record layer) and broken inputs.
func FuzzParseClientHello(f *testing.F) {
	f.Add([]byte{22, 3, 1, 0, 5, 1, 0, 0, 1, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseClientHello(data)
		checkResult(t, h, err)

		// Pieces of 1 to 13 bytes, so that every field boundary falls
		// inside some piece and between others.
		var p Parser
		var h2 *ClientHello
		var err2 error = ErrIncomplete
		for i, rest := 0, data; len(rest) > 0; i++ {
			k := min(len(rest), 1+i*5%13)
			h2, err2 = p.Feed(rest[:k])
			rest = rest[k:]
		}
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("whole: %v; in pieces: %v", err, err2)
		}
		if h != nil && h.JA4RO(TransportTCP) != h2.JA4RO(TransportTCP) {
			t.Fatalf("whole and pieced hellos differ")
		}

		h, err = ParseHandshake(data)
		checkResult(t, h, err)
	})
}

func checkResult(t *testing.T, h *ClientHello, err error) {
	t.Helper()
	if err != nil {
		if h != nil {
			t.Fatalf("hello and error %v", err)
		}
		if err != ErrIncomplete && err != ErrNotTLS && err != ErrTooLarge && !errors.Is(err, ErrMalformed) {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	for _, tr := range []byte{TransportTCP, TransportQUIC, TransportDTLS} {
		for _, fp := range []string{h.JA4(tr), h.JA4O(tr)} {
			if !ja4Shape.MatchString(fp) {
				t.Fatalf("malformed JA4 %q", fp)
			}
		}
	}
	if raw := h.JA4R(TransportTCP); raw[:10] != h.JA4(TransportTCP)[:10] {
		t.Fatalf("JA4R %q does not start like JA4", raw)
	}
	if !ja3Shape.MatchString(h.JA3()) || !hashShape.MatchString(h.JA3Hash()) {
		t.Fatalf("malformed JA3 %q", h.JA3())
	}
}
