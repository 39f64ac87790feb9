// Package forward is Weir's forward proxy: one listening port that speaks
// HTTP proxying (absolute-form requests such as
// "GET http://example.com/ HTTP/1.1" and CONNECT tunnels), the same over
// TLS when given certificates (HTTP/2 CONNECT streams included), and
// SOCKS5 (CONNECT and, when enabled, UDP ASSOCIATE and BIND), with proxy
// authentication, an egress policy against server-side request forgery,
// a choice of source address for every outbound connection, and
// per-user limits. With Options.HTTP3, the UDP port of the same number
// serves MASQUE (CONNECT-UDP over HTTP/3, package masque).
//
// # One port, three protocols
//
// Each accepted connection is looked at before anything is read from it:
// the first byte is peeked (with MSG_PEEK, so nothing is consumed), within
// Options.HandshakeTimeout. A SOCKS5 client always starts with the version
// byte 0x05, and a TLS client with 0x16 (a handshake record); no HTTP
// request can start with either. SOCKS5 connections are served by the
// SOCKS5 side of this package. Every other connection is handed,
// untouched, to Weir's HTTP engine (package proxy) through a listener
// that yields only those connections (TLS ones through a second listener
// on which the engine terminates TLS and speaks HTTP/2 to clients that
// ask), so HTTP clients get the engine's keep-alive loop, strict parser,
// limits and connection pools.
//
// # What a client may reach
//
// Every destination goes through an egress.Dialer built from
// Options.Policy. By default that refuses loopback, private, link-local
// (cloud metadata included) and other special-purpose addresses, checks
// every address a name resolves to, and connects only to the addresses it
// checked. Tunnels (CONNECT, SOCKS5 CONNECT) may reach port 443 only
// unless Policy.ConnectPorts says otherwise. A SOCKS5 BIND's DST.ADDR,
// the address the incoming connection must come from, is checked the
// same way (its port is not), and only a connection from one of the
// addresses that passed is relayed. A refusal is answered with 403
// and a Proxy-Status header (RFC 9209) over HTTP, and with reply 0x02 (not
// allowed by ruleset) over SOCKS5.
//
// # Authentication
//
// With Options.Auth set, HTTP clients must send
// "Proxy-Authorization: Basic ..." on every request (a 407 with
// Proxy-Authenticate asks for it) and SOCKS5 clients must use RFC 1929
// username/password authentication. A user name may carry a session,
// "alice-session-abc123": the part before the last "-session-" is the
// user that is authenticated; the session only selects a sticky source
// address (see egress.SplitSession).
//
// A server that listens on anything but a loopback address must have
// authentication, or New refuses to start it unless Options.AllowOpen is
// set: an open proxy on the Internet is found and abused within hours.
//
// # Per-user limits
//
// Options.UserLimits bounds each user's uses in progress (tunnels,
// requests in flight, UDP associations, MASQUE flows) and throughput, with
// token buckets (golang.org/x/time/rate) shared by all of a user's flows.
// Without Auth, a client IP address is a user.
//
// # Names
//
// Unless Options.Resolver is set, names are resolved by a caching
// resolver (package resolver) asking the nameservers or DNS-over-HTTPS
// server of Options.DNS, by default those of /etc/resolv.conf.
package forward
