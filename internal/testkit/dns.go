package testkit

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS answers A questions for the names in its table, NODATA for other
// types of those names and NXDOMAIN for the rest, and counts the
// questions by "TYPE name" (such as "A origin.weir.test."). It serves UDP
// (ServeUDP) and DNS over HTTPS (it is an http.Handler).
type DNS struct {
	names map[string]netip.Addr // lower case, with the trailing dot
	mu    sync.Mutex
	asked map[string]int
}

// NewDNS returns a server for names (lower case, with the trailing dot).
func NewDNS(names map[string]netip.Addr) *DNS {
	return &DNS{names: names, asked: map[string]int{}}
}

// Count reports how often q ("TYPE name") was asked.
func (d *DNS) Count(q string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.asked[q]
}

// Query reads a DNS query's header and first question, and the key a
// test server counts it by: "TYPE name", the name in lower case. ok is
// false for garbage.
func Query(msg []byte) (h dnsmessage.Header, q dnsmessage.Question, key string, ok bool) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return h, q, "", false
	}
	if q, err = p.Question(); err != nil {
		return h, q, "", false
	}
	return h, q, strings.TrimPrefix(q.Type.String(), "Type") + " " + strings.ToLower(q.Name.String()), true
}

// answer builds the response to one query (nil for garbage).
func (d *DNS) answer(msg []byte) []byte {
	h, q, key, ok := Query(msg)
	if !ok {
		return nil
	}
	name := strings.ToLower(q.Name.String())
	d.mu.Lock()
	d.asked[key]++
	d.mu.Unlock()
	addr, ok := d.names[name]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionAvailable: true}
	if !ok {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	if ok && q.Type == dnsmessage.TypeA {
		_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 300},
			dnsmessage.AResource{A: addr.As4()})
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// ServeUDP answers over UDP on 127.0.0.1 and returns the address.
func (d *DNS) ServeUDP(tb testing.TB) string {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := d.answer(buf[:n]); out != nil {
				_, _ = pc.WriteTo(out, from)
			}
		}
	})
	tb.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return pc.LocalAddr().String()
}

// ServeHTTP answers DNS over HTTPS (RFC 8484) POSTs.
func (d *DNS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	msg, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/dns-message" {
		http.Error(w, "bad query", http.StatusBadRequest)
		return
	}
	out := d.answer(msg)
	if out == nil {
		http.Error(w, "bad query", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/dns-message")
	_, _ = w.Write(out)
}
