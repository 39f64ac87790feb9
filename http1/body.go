package http1

import "github.com/weirproxy/weir/message"

// BodyMode says how a message body is delimited.
type BodyMode uint8

const (
	BodyNone       BodyMode = iota // no body follows the head
	BodyLength                     // exactly length bytes follow
	BodyChunked                    // a chunked body follows (ChunkedDecoder)
	BodyUntilClose                 // the body runs until the peer closes
)

// ResponseBodyMode applies RFC 9112 6.3 to a response to a request with
// method reqMethod. length is the body length for BodyLength and -1
// otherwise. BodyUntilClose means the connection cannot be reused.
func ResponseBodyMode(reqMethod []byte, resp *message.Response) (mode BodyMode, length int64) {
	s := resp.Status
	switch {
	// 6.3 (1): responses to HEAD, and 1xx, 204 and 304 responses, end
	// with the head whatever their fields say.
	case string(reqMethod) == "HEAD", s < 200, s == 204, s == 304:
		return BodyNone, -1
	// 6.3 (2): a 2xx to CONNECT turns the connection into a tunnel.
	case s < 300 && string(reqMethod) == "CONNECT":
		return BodyNone, -1
	// 6.3 (4): chunked as the final coding.
	case resp.Chunked:
		return BodyChunked, -1
	// 6.3 (6): a valid Content-Length.
	case resp.ContentLength >= 0:
		return BodyLength, resp.ContentLength
	}
	// 6.3 (8): otherwise the body ends when the connection closes.
	return BodyUntilClose, -1
}
