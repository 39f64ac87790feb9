package http1

import (
	"errors"
	"testing"
)

// TestChunkedTrailerFramingFields: framing and routing fields in a
// trailer section are rejected (RFC 9110 6.5.1), so that no recipient
// that merges trailers into the header section can be desynchronised;
// other trailer fields pass.
func TestChunkedTrailerFramingFields(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{"0\r\nX-Checksum: abc\r\n\r\n", true},
		{"0\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"0\r\ncontent-length: 5\r\n\r\n", false},
		{"0\r\nX-A: 1\r\nHost: evil.example\r\n\r\n", false},
	} {
		var d ChunkedDecoder
		_, _, err := d.Decode([]byte(tc.body))
		var pe *Error
		switch {
		case tc.ok && (err != nil || !d.Done()):
			t.Errorf("%q: %v, done %v; want accepted", tc.body, err, d.Done())
		case !tc.ok && (!errors.As(err, &pe) || pe.Status != 400):
			t.Errorf("%q: %v; want a 400 error", tc.body, err)
		}
	}
}
