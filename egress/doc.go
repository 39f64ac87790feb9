// Package egress is Weir's outbound layer for the forward proxy (HTTP
// absolute-form requests, CONNECT and SOCKS5): it decides where a client may
// make Weir connect, and then connects exactly there.
//
// It has three parts:
//
//   - Policy, the guard against server-side request forgery (SSRF). Safe by
//     default: loopback, private, link-local (cloud metadata included),
//     multicast, reserved and the other special-purpose ranges are refused,
//     tunnels may only reach port 443, and IPv4 addresses hidden inside IPv6
//     transition forms (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo)
//     are unpacked and checked as IPv4. A refusal is a *Refused whose Reason
//     is short and safe to show to the client.
//   - Dialer, which checks the name, resolves it once, checks every address
//     and dials only the addresses it checked, racing them with Happy
//     Eyeballs (RFC 8305). Because the name is never looked up again, a DNS
//     answer that changes between check and connect (DNS rebinding) cannot
//     move the connection to a refused address.
//   - SourcePool, which picks the local (source) address of an outbound
//     connection: round robin, fixed per user, or sticky per session.
//
// A typical CONNECT handler:
//
//	conn, remote, err := dialer.DialContext(ctx, "tcp", target, egress.DialOptions{
//		LocalAddr: pool.Pick(user, session),
//	})
//	var refused *egress.Refused
//	if errors.As(err, &refused) {
//		// answer 403 with refused.Reason
//	}
package egress
