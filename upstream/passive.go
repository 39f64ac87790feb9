package upstream

import "time"

// Health state of a peer.
//
// A peer is available when the active health checker last found it up and
// passive health has not ejected it. Both halves are plain atomics so that
// balancers can test availability on every Pick without locks; the common
// case (never ejected) costs two atomic loads and no clock read.
//
// Passive health counts consecutive failed exchanges, as the engine reports
// them with ReportFailure and ReportSuccess. After
// maxFails of them in a row the peer is ejected for ejectFor. When the
// ejection expires the peer is half-open: it is offered traffic again, but
// its failure count is not cleared, so a single further failure ejects it
// again at once. Only a success clears the count.

// Available reports whether the peer may be given new requests: it is up
// by active health checks and not currently ejected by passive health.
func (p *Peer) Available() bool {
	return p.up.Load() && (p.ejectedUntil.Load() == 0 || p.ejectionOver())
}

// ejectionOver reports, for a peer that has (or had) a passive ejection
// deadline, whether the ejection is over. An expired deadline is cleared
// so that later calls take the fast path again.
func (p *Peer) ejectionOver() bool {
	until := p.ejectedUntil.Load()
	if until != 0 && time.Now().UnixNano() < until {
		return false
	}
	// A failure that re-ejected the peer meanwhile wins the race.
	p.ejectedUntil.CompareAndSwap(until, 0)
	return true
}

// Inflight returns the number of requests in flight to the peer now.
func (p *Peer) Inflight() int64 { return p.inflight.Load() }

// SetUp records the result of active health checking.
func (p *Peer) SetUp(up bool) { p.up.Store(up) }

// ReportSuccess records a successful exchange with the peer: it clears the
// count of consecutive failures.
func (p *Peer) ReportSuccess() {
	// Avoid a store (and the cache-line traffic it causes) on the hot path
	// when there is nothing to clear.
	if p.fails.Load() != 0 {
		p.fails.Store(0)
	}
}

// ReportFailure records a failed exchange with the peer and reports whether
// this call ejected it. After maxFails
// consecutive failures the peer is ejected for ejectFor; maxFails ≤ 0 (or
// ejectFor ≤ 0) disables passive ejection. Failures reported while the
// peer is already ejected (by requests that were in flight when it was
// ejected) do not extend the ejection. After the ejection expires, one more
// failure ejects the peer again unless a success came in between.
func (p *Peer) ReportFailure(maxFails int, ejectFor time.Duration) (ejected bool) {
	if maxFails <= 0 || ejectFor <= 0 {
		return false
	}
	n := p.fails.Add(1)
	if n < 0 { // saturate instead of wrapping after 2^31 failures
		p.fails.Store(int32(maxFails))
		n = int32(maxFails)
	}
	if int64(n) < int64(maxFails) {
		return false
	}
	now := time.Now().UnixNano()
	until := p.ejectedUntil.Load()
	if until != 0 && now < until {
		return false // already ejected
	}
	return p.ejectedUntil.CompareAndSwap(until, now+int64(ejectFor))
}

// Ejected reports whether passive health has the peer ejected right now.
func (p *Peer) Ejected() bool {
	until := p.ejectedUntil.Load()
	return until != 0 && time.Now().UnixNano() < until
}
