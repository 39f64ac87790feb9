package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/weirproxy/weir"
)

// TestTrailers: trailer fields cross Weir in both directions, on chunked
// bodies, as gRPC-style checksums and statuses need.
func TestTrailers(t *testing.T) {
	t.Parallel()
	var gotReqTrailer string
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // trailers are readable after the body
		gotReqTrailer = r.Trailer.Get("X-Upload-Sum")
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(200)
		_, _ = w.Write(body)
		w.(http.Flusher).Flush() // force chunked framing
		w.Header().Set("X-Checksum", "sum-"+string(body[:3]))
	}))
	p := startWeir(t, oneRouteConfig(o, "", ""), weir.Options{})
	req, err := http.NewRequest("POST", p.url("/t"), io.NopCloser(strings.NewReader("abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // chunked, so it can carry a trailer
	req.Trailer = http.Header{"X-Upload-Sum": {"up-123"}}
	resp, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "abcdef" {
		t.Fatalf("body %q err %v", body, err)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "sum-abc" {
		t.Errorf("client saw response trailer X-Checksum=%q, want sum-abc (trailers %v)", got, resp.Trailer)
	}
	if gotReqTrailer != "up-123" {
		t.Errorf("origin saw request trailer X-Upload-Sum=%q, want up-123", gotReqTrailer)
	}
}
