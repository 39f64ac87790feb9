package http1

import (
	"strconv"

	"github.com/weirproxy/weir/message"
)

// The writers append to dst and allocate only when dst lacks capacity.
// They write exactly what they are given: the caller is responsible for
// names and values being valid (no CR, LF or NUL from untrusted input).

// AppendRequestHead appends "Method SP Path SP HTTP/1.1 CRLF", each field
// of req.Header in order, and the final CRLF. Path is written as the
// request-target: callers forwarding CONNECT or absolute-form set it.
func AppendRequestHead(dst []byte, req *message.Request) []byte {
	dst = append(dst, req.Method...)
	dst = append(dst, ' ')
	dst = append(dst, req.Path...)
	dst = append(dst, " HTTP/1.1\r\n"...)
	return appendFields(dst, &req.Header)
}

// AppendResponseHead appends "HTTP/1.1 SP status SP reason CRLF", each
// field of resp.Header in order, and the final CRLF. An empty Reason is
// replaced by StatusText(resp.Status).
func AppendResponseHead(dst []byte, resp *message.Response) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = AppendInt(dst, int64(resp.Status))
	dst = append(dst, ' ')
	if len(resp.Reason) > 0 {
		dst = append(dst, resp.Reason...)
	} else {
		dst = append(dst, StatusText(resp.Status)...)
	}
	dst = append(dst, "\r\n"...)
	return appendFields(dst, &resp.Header)
}

func appendFields(dst []byte, h *message.Header) []byte {
	if h != nil {
		for i := range h.Fields {
			dst = append(dst, h.Fields[i].Name...)
			dst = append(dst, ": "...)
			dst = append(dst, h.Fields[i].Value...)
			dst = append(dst, "\r\n"...)
		}
	}
	return append(dst, "\r\n"...)
}

// AppendChunkHeader appends the chunk-size line for n bytes of data (hex
// size, CRLF). n must be positive: a zero-size chunk would end the body,
// which is AppendLastChunk's job, so n <= 0 panics.
func AppendChunkHeader(dst []byte, n int) []byte {
	if n <= 0 {
		panic("http1: AppendChunkHeader with non-positive size")
	}
	dst = strconv.AppendUint(dst, uint64(n), 16)
	return append(dst, "\r\n"...)
}

// AppendChunkEnd appends the CRLF that follows chunk data.
func AppendChunkEnd(dst []byte) []byte { return append(dst, "\r\n"...) }

// AppendLastChunk appends the last chunk ("0" CRLF), the trailer fields
// (trailer may be nil) and the final CRLF.
func AppendLastChunk(dst []byte, trailer *message.Header) []byte {
	dst = append(dst, "0\r\n"...)
	return appendFields(dst, trailer)
}

// AppendInt appends n in decimal.
func AppendInt(dst []byte, n int64) []byte { return strconv.AppendInt(dst, n, 10) }

// StatusText returns the reason phrase registered for code (RFC 9110 15
// and the IANA registry), or "" if there is none.
func StatusText(code int) string {
	if code < 0 || code >= len(statusText) {
		return ""
	}
	return statusText[code]
}

var statusText = [600]string{
	100: "Continue",
	101: "Switching Protocols",
	102: "Processing",
	103: "Early Hints",

	200: "OK",
	201: "Created",
	202: "Accepted",
	203: "Non-Authoritative Information",
	204: "No Content",
	205: "Reset Content",
	206: "Partial Content",
	207: "Multi-Status",
	208: "Already Reported",
	226: "IM Used",

	300: "Multiple Choices",
	301: "Moved Permanently",
	302: "Found",
	303: "See Other",
	304: "Not Modified",
	305: "Use Proxy",
	307: "Temporary Redirect",
	308: "Permanent Redirect",

	400: "Bad Request",
	401: "Unauthorized",
	402: "Payment Required",
	403: "Forbidden",
	404: "Not Found",
	405: "Method Not Allowed",
	406: "Not Acceptable",
	407: "Proxy Authentication Required",
	408: "Request Timeout",
	409: "Conflict",
	410: "Gone",
	411: "Length Required",
	412: "Precondition Failed",
	413: "Content Too Large",
	414: "URI Too Long",
	415: "Unsupported Media Type",
	416: "Range Not Satisfiable",
	417: "Expectation Failed",
	421: "Misdirected Request",
	422: "Unprocessable Content",
	423: "Locked",
	424: "Failed Dependency",
	425: "Too Early",
	426: "Upgrade Required",
	428: "Precondition Required",
	429: "Too Many Requests",
	431: "Request Header Fields Too Large",
	451: "Unavailable For Legal Reasons",

	500: "Internal Server Error",
	501: "Not Implemented",
	502: "Bad Gateway",
	503: "Service Unavailable",
	504: "Gateway Timeout",
	505: "HTTP Version Not Supported",
	506: "Variant Also Negotiates",
	507: "Insufficient Storage",
	508: "Loop Detected",
	510: "Not Extended",
	511: "Network Authentication Required",
}
