// Package tlsfp reads a TLS ClientHello from the start of a connection and
// computes the client's JA3 and JA4 fingerprints from it, so that Weir's
// routes and filters can tell TLS client implementations apart (a browser,
// curl, a bot framework) before or after the handshake.
//
// There are three ways in:
//
//   - Conn wraps an accepted net.Conn before it is handed to tls.Server.
//     It watches the bytes crypto/tls reads, parses the ClientHello as it
//     goes by and then steps aside; ClientHello (or Lookup, given the
//     *tls.Conn) returns the result. It is ready by the time
//     tls.Config.GetConfigForClient or GetCertificate runs. Fingerprint
//     and NewListener are shorthands for the usual ways of wrapping.
//   - Peek reads the ClientHello from a bufio.Reader without consuming it,
//     for a front end that routes raw TCP by SNI.
//   - ParseClientHello (a TLS byte stream), Parser (the same, fed in
//     pieces) and ParseHandshake (a bare handshake message, as QUIC CRYPTO
//     frames carry it) for everything else.
//
// The parser is strict and bounded: a ClientHello larger than
// MaxHandshakeSize is not parsed, every length is checked against its
// container, and malformed input is an error, never a panic. It only
// reads the hello; it does not validate it the way a TLS server must, and
// crypto/tls still decides whether the handshake succeeds.
//
// GREASE values (RFC 8701) are kept in the parsed ClientHello, in the order
// they came, and left out of every fingerprint, as both specifications
// require.
package tlsfp
