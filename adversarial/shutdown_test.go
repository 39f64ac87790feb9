package adversarial

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weirproxy/weir/internal/testutil"
)

// shutdownTally counts how each request of the shutdown test ended.
type shutdownTally struct {
	mu sync.Mutex
	// ok: a complete 200. okAfterTerm: of those, the ones that ended
	// after SIGTERM (they were in flight or sent on a live connection).
	ok, okAfterTerm int
	// refusedNew: a new connection after the listener closed was refused
	// or reset before any response byte: expected.
	refusedNew int
	// idleClosed: a kept-alive connection that Weir closed while idle,
	// before reading the request sent on it; no response byte came back,
	// and the client retried on a new connection.
	idleClosed int
	// midFlight: a request that received part of a response, or a
	// non-200: never allowed.
	midFlight []string
}

// TestGracefulShutdownUnderLoad: 8 clients send keep-alive GETs through
// the weir binary to an origin that takes 50ms per request. On SIGTERM,
// every request that Weir accepted completes with a 200, new connections
// are refused once the listener closes, and the process exits 0 within
// the grace period. A request that meets a kept-alive connection Weir is
// closing gets no byte at all and is retried on a new connection, like a
// well-behaved client retries an idempotent request.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	rec := testutil.NewRecorder(t, func(i int, r *testutil.SimpleRequest) testutil.Action {
		// A 50ms origin: the response is held back, then sent at once.
		return testutil.Action{Write: testutil.OKResponse(i), Delay: 50 * time.Millisecond}
	})
	const grace = 5 * time.Second
	p := startWeirProc(t, rec.Addr, "shutdown_grace: 5s\n")

	var tally shutdownTally
	var termAt time.Time
	var termMu sync.RWMutex
	afterTerm := func() bool {
		termMu.RLock()
		defer termMu.RUnlock()
		return !termAt.IsZero()
	}
	var wg sync.WaitGroup
	deadline := time.Now().Add(15 * time.Second) // bound on the whole load
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *testutil.RawClient
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			// Half the clients think for 20ms between requests, so that
			// some kept-alive connections are idle when SIGTERM comes.
			var think *time.Ticker
			if g%2 == 1 {
				think = time.NewTicker(20 * time.Millisecond)
				defer think.Stop()
			}
			for time.Now().Before(deadline) {
				if think != nil {
					<-think.C
				}
				fresh := false
				if c == nil {
					var err error
					if c, err = testutil.DialRaw(p.Addr); err != nil {
						if afterTerm() {
							tally.mu.Lock()
							tally.refusedNew++
							tally.mu.Unlock()
							return
						}
						tally.mu.Lock()
						tally.midFlight = append(tally.midFlight, "dial before SIGTERM: "+err.Error())
						tally.mu.Unlock()
						return
					}
					fresh = true
				}
				resp, err := c.Do(testutil.Get("/load"), false, 10*time.Second)
				tally.mu.Lock()
				switch {
				case err == nil && resp.Status == 200 && strings.HasPrefix(string(resp.Body), "response "):
					tally.ok++
					if afterTerm() {
						tally.okAfterTerm++
					}
				case err != nil && c.Partial == 0 && noResponse(err) && afterTerm() && fresh:
					tally.refusedNew++
				case err != nil && c.Partial == 0 && noResponse(err) && afterTerm():
					tally.idleClosed++ // retried below on a new connection
				default:
					if err != nil {
						tally.midFlight = append(tally.midFlight, fmt.Sprintf("%v after %d response bytes", err, c.Partial))
					} else {
						tally.midFlight = append(tally.midFlight, fmt.Sprintf("status %d %q", resp.Status, resp.Body))
					}
				}
				tally.mu.Unlock()
				if err != nil || resp.Close {
					c.Close()
					c = nil
					if err != nil && afterTerm() && fresh {
						return
					}
				}
			}
		}()
	}
	// Load for a moment before the signal; pacing the test, not waiting on
	// a condition.
	testutil.WaitFor(t, 10*time.Second, "requests to flow", func() bool {
		tally.mu.Lock()
		defer tally.mu.Unlock()
		return tally.ok >= 150
	})
	termMu.Lock()
	termAt = time.Now()
	termMu.Unlock()
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)

	testutil.WaitFor(t, 5*time.Second, "new connections to be refused after SIGTERM", func() bool {
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	wg.Wait()
	var exitAfter time.Duration
	select {
	case <-p.Done:
		exitAfter = time.Since(termAt)
	case <-time.After(grace + 5*time.Second):
		t.Fatal("weir did not exit within its grace period after SIGTERM")
	}
	t.Logf("shutdown: %d requests completed (%d after SIGTERM), %d refused on new connections, %d met a closing idle connection and were retried, %d failed mid-flight; exit %v after %v",
		tally.ok, tally.okAfterTerm, tally.refusedNew, tally.idleClosed, len(tally.midFlight), p.Err, exitAfter)
	if len(tally.midFlight) > 0 {
		t.Fatalf("requests failed mid-flight: %v", tally.midFlight)
	}
	if p.Err != nil {
		t.Fatalf("weir exited with %v, want 0", p.Err)
	}
	if exitAfter > grace {
		t.Fatalf("weir took %v to exit, more than its %v grace period", exitAfter, grace)
	}
	if tally.okAfterTerm == 0 {
		t.Fatalf("no request completed after SIGTERM: the in-flight ones were dropped")
	}
}

// noResponse reports an error that means the connection ended before any
// response byte: EOF, a reset, a refused or broken connection.
func noResponse(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}
