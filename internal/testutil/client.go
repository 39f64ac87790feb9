package testutil

import (
	"io"
	"net"
	"time"
)

// RawClient sends requests as bytes on one connection and reads the
// responses with the simple reader (ParseSimpleResponse).
type RawClient struct {
	C       net.Conn
	pending []byte
	// Partial counts the bytes of the current response that arrived
	// before an error: zero means the server sent nothing for it.
	Partial int
}

// DialRaw connects to addr.
func DialRaw(addr string) (*RawClient, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &RawClient{C: c}, nil
}

// Do writes req and reads one response.
func (rc *RawClient) Do(req []byte, head bool, timeout time.Duration) (*SimpleResponse, error) {
	_ = rc.C.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := rc.C.Write(req); err != nil {
		rc.Partial = len(rc.pending)
		return nil, err
	}
	return rc.ReadResponse(head, timeout)
}

// ReadResponse reads one response within timeout. A response cut short by
// the close is returned with Truncated set and io.ErrUnexpectedEOF.
func (rc *RawClient) ReadResponse(head bool, timeout time.Duration) (*SimpleResponse, error) {
	_ = rc.C.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 32<<10)
	for {
		resp, n, ok, err := ParseSimpleResponse(rc.pending, false, head)
		if err != nil {
			return nil, err
		}
		if ok {
			rc.pending = rc.pending[n:]
			return resp, nil
		}
		m, rerr := rc.C.Read(buf)
		rc.pending = append(rc.pending, buf[:m]...)
		if rerr != nil {
			rc.Partial = len(rc.pending)
			if IsTimeout(rerr) {
				return nil, rerr
			}
			resp, _, ok, err := ParseSimpleResponse(rc.pending, true, head)
			if err == nil && ok && !resp.Truncated {
				rc.pending = nil
				return resp, nil
			}
			if ok {
				return resp, io.ErrUnexpectedEOF
			}
			return nil, rerr
		}
	}
}

// Close closes the connection.
func (rc *RawClient) Close() error { return rc.C.Close() }

// Get is a GET request for path with Host: x.
func Get(path string) []byte {
	return []byte("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
}
