package resolver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Sizes and bounds of the DNS messages Weir sends and accepts.
const (
	// EDNSPayloadSize is the UDP payload size Weir advertises with EDNS(0)
	// (the DNS Flag Day 2020 value, which avoids IP fragmentation).
	// Nameservers truncate larger answers, and Weir asks again over TCP.
	EDNSPayloadSize = 1232

	// MaxUDPResponse is the read buffer for one UDP answer. A datagram
	// that fills it is treated as truncated and asked again over TCP.
	MaxUDPResponse = 4096

	// MaxMessageSize is the largest answer accepted over TCP or HTTPS:
	// the most a DNS message's 16-bit length prefix can announce.
	MaxMessageSize = 65535

	// MaxCNAMEChain is how many CNAME records are followed, within one
	// answer, from the name asked for to the name holding the addresses.
	MaxCNAMEChain = 8
)

// errMismatch: the message is not the answer to the query that was sent
// (another ID, not a response, another question). Over UDP such messages
// are ignored and the client keeps waiting for the real answer.
var errMismatch = errors.New("response does not match the query")

// newQuestion returns the question for name (canonical, without the
// trailing dot) in family fam.
func newQuestion(name string, fam Family) (dnsmessage.Question, error) {
	n, err := dnsmessage.NewName(name + ".")
	if err != nil {
		return dnsmessage.Question{}, fmt.Errorf("%w: %v", ErrInvalidName, err)
	}
	typ := dnsmessage.TypeA
	if fam == IPv6 {
		typ = dnsmessage.TypeAAAA
	}
	return dnsmessage.Question{Name: n, Type: typ, Class: dnsmessage.ClassINET}, nil
}

// buildQuery returns a recursive query for q with the given ID, preceded
// by its two-byte length as DNS over TCP frames it: UDP and HTTPS send
// msg[2:]. With edns set the query advertises EDNSPayloadSize.
func buildQuery(id uint16, q dnsmessage.Question, edns bool) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 2, 64), dnsmessage.Header{ID: id, RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if edns {
		if err := b.StartAdditionals(); err != nil {
			return nil, err
		}
		var opt dnsmessage.ResourceHeader
		if err := opt.SetEDNS0(EDNSPayloadSize, dnsmessage.RCodeSuccess, false); err != nil {
			return nil, err
		}
		if err := b.OPTResource(opt, dnsmessage.OPTResource{}); err != nil {
			return nil, err
		}
	}
	msg, err := b.Finish()
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint16(msg, uint16(len(msg)-2))
	return msg, nil
}

// response is what parseResponse keeps of an answer.
type response struct {
	rcode     dnsmessage.RCode
	truncated bool
	addrs     []netip.Addr
	ttl       uint32 // smallest TTL of the records leading to addrs
	hasSOA    bool
	negTTL    uint32 // negative TTL from the SOA record, when hasSOA
}

type addrRecord struct {
	name dnsmessage.Name
	addr netip.Addr
	ttl  uint32
}

type cnameRecord struct {
	name, target dnsmessage.Name
	ttl          uint32
}

// parseResponse reads msg as the answer to the query with the given ID and
// question. It returns errMismatch when msg answers something else and
// another error when msg is malformed. A truncated answer is returned with
// only rcode and truncated set. The addresses kept are those of the
// question's type owned by the question's name or by the end of a CNAME
// chain starting there (at most MaxCNAMEChain links).
func parseResponse(msg []byte, id uint16, q dnsmessage.Question) (response, error) {
	var resp response
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return resp, err
	}
	if h.ID != id || !h.Response || h.OpCode != 0 {
		return resp, errMismatch
	}
	got, err := p.Question()
	if err != nil {
		if err == dnsmessage.ErrSectionDone {
			return resp, errMismatch
		}
		return resp, err
	}
	if got.Type != q.Type || got.Class != q.Class || !equalName(got.Name, q.Name) {
		return resp, errMismatch
	}
	if _, err := p.Question(); err != dnsmessage.ErrSectionDone {
		return resp, errMismatch
	}
	resp.rcode = h.RCode
	resp.truncated = h.Truncated
	if h.Truncated || (h.RCode != dnsmessage.RCodeSuccess && h.RCode != dnsmessage.RCodeNameError) {
		return resp, nil
	}

	var addrs []addrRecord
	var cnames []cnameRecord
	for {
		rh, err := p.AnswerHeader()
		if err == dnsmessage.ErrSectionDone {
			break
		}
		if err != nil {
			return resp, err
		}
		switch {
		case rh.Class != dnsmessage.ClassINET:
			err = p.SkipAnswer()
		case rh.Type == dnsmessage.TypeA && q.Type == dnsmessage.TypeA:
			var r dnsmessage.AResource
			if r, err = p.AResource(); err == nil {
				addrs = append(addrs, addrRecord{rh.Name, netip.AddrFrom4(r.A), ttlSeconds(rh.TTL)})
			}
		case rh.Type == dnsmessage.TypeAAAA && q.Type == dnsmessage.TypeAAAA:
			var r dnsmessage.AAAAResource
			if r, err = p.AAAAResource(); err == nil {
				addrs = append(addrs, addrRecord{rh.Name, netip.AddrFrom16(r.AAAA), ttlSeconds(rh.TTL)})
			}
		case rh.Type == dnsmessage.TypeCNAME:
			var r dnsmessage.CNAMEResource
			if r, err = p.CNAMEResource(); err == nil {
				cnames = append(cnames, cnameRecord{rh.Name, r.CNAME, ttlSeconds(rh.TTL)})
			}
		default:
			err = p.SkipAnswer()
		}
		if err != nil {
			return resp, err
		}
	}
	for {
		rh, err := p.AuthorityHeader()
		if err == dnsmessage.ErrSectionDone {
			break
		}
		if err != nil {
			return resp, err
		}
		if rh.Type == dnsmessage.TypeSOA && rh.Class == dnsmessage.ClassINET && !resp.hasSOA {
			soa, err := p.SOAResource()
			if err != nil {
				return resp, err
			}
			// RFC 2308, section 5: the smaller of the SOA's own TTL and
			// its MINIMUM field.
			resp.hasSOA = true
			resp.negTTL = min(ttlSeconds(rh.TTL), ttlSeconds(soa.MinTTL))
			continue
		}
		if err := p.SkipAuthority(); err != nil {
			return resp, err
		}
	}

	name := q.Name
	chainTTL := ^uint32(0)
	for hop := 0; ; hop++ {
		ttl := chainTTL
		for _, a := range addrs {
			if equalName(a.name, name) {
				resp.addrs = append(resp.addrs, a.addr)
				ttl = min(ttl, a.ttl)
			}
		}
		if len(resp.addrs) > 0 {
			resp.ttl = ttl
			break
		}
		if hop == MaxCNAMEChain {
			break
		}
		next := -1
		for i, c := range cnames {
			if equalName(c.name, name) {
				next = i
				break
			}
		}
		if next < 0 {
			break
		}
		chainTTL = min(chainTTL, cnames[next].ttl)
		name = cnames[next].target
	}
	return resp, nil
}

// answer turns a parsed response into a Backend answer, or into an error
// wrapping ErrServerFailure when the nameserver reported one.
func (r *response) answer() (Answer, error) {
	negative := TTLUnknown
	if r.hasSOA {
		negative = time.Duration(r.negTTL) * time.Second
	}
	switch r.rcode {
	case dnsmessage.RCodeSuccess:
		if len(r.addrs) > 0 {
			return Answer{Addrs: r.addrs, TTL: time.Duration(r.ttl) * time.Second}, nil
		}
		return Answer{TTL: negative}, nil
	case dnsmessage.RCodeNameError:
		return Answer{NXDomain: true, TTL: negative}, nil
	}
	return Answer{}, fmt.Errorf("%w: %s", ErrServerFailure, rcodeName(r.rcode))
}

// rcodeName returns the mnemonic of a response code as RFC 1035 and
// RFC 6895 spell it.
func rcodeName(c dnsmessage.RCode) string {
	switch c {
	case dnsmessage.RCodeFormatError:
		return "FORMERR"
	case dnsmessage.RCodeServerFailure:
		return "SERVFAIL"
	case dnsmessage.RCodeNotImplemented:
		return "NOTIMP"
	case dnsmessage.RCodeRefused:
		return "REFUSED"
	}
	return "RCODE " + strconv.Itoa(int(c))
}

// ttlSeconds reads a TTL field; RFC 2181, section 8, says values with the
// top bit set are to be read as zero.
func ttlSeconds(ttl uint32) uint32 {
	if ttl > 1<<31-1 {
		return 0
	}
	return ttl
}

// equalName compares two names as DNS does: ASCII letters without regard
// to case, every other byte exactly.
func equalName(a, b dnsmessage.Name) bool {
	if a.Length != b.Length {
		return false
	}
	for i := 0; i < int(a.Length); i++ {
		x, y := a.Data[i], b.Data[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
