// Command origin is the benchmark origin server: a minimal HTTP/1.1 server
// that answers from fixed, pre-built responses so that it costs as little
// CPU per request as possible and the proxy in front of it is what gets
// measured.
//
//	GET  /small  200, 12-byte body "hello world\n"
//	GET  /100k   200, 102400-byte body
//	POST /post   reads the whole body (Content-Length or chunked), 200, 12-byte body
//	anything else 404
//
// Keep-alive, pipelining, Connection: close and HTTP/1.0 are handled; it
// uses only the standard library.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
)

func response(status string, body []byte, close bool) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n", status, len(body))
	if close {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

var (
	small    = []byte("hello world\n")
	big      = bytes.Repeat([]byte("0123456789abcdef"), 100<<10/16)
	notFound = []byte("not found\n")

	// responses[path][close]
	respSmall    = [2][]byte{response("200 OK", small, false), response("200 OK", small, true)}
	respBig      = [2][]byte{response("200 OK", big, false), response("200 OK", big, true)}
	respNotFound = [2][]byte{response("404 Not Found", notFound, false), response("404 Not Found", notFound, true)}
	respBad      = response("400 Bad Request", []byte("bad request\n"), true)
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen `address`")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "origin listening on %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			log.Printf("accept: %v", err)
			continue
		}
		go serve(c)
	}
}

var errBad = errors.New("bad request")

func serve(c net.Conn) {
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	r := bufio.NewReaderSize(c, 16<<10)
	w := bufio.NewWriterSize(c, 16<<10)
	for {
		keep, resp, err := readRequest(r)
		if err != nil {
			if err == errBad {
				_, _ = c.Write(respBad)
			}
			return
		}
		if len(resp) > w.Available() && w.Buffered() == 0 {
			// Large response and nothing queued: write it straight out.
			if _, err := c.Write(resp); err != nil {
				return
			}
		} else if _, err := w.Write(resp); err != nil {
			return
		}
		// Flush when no further (pipelined) request is already buffered.
		if r.Buffered() == 0 || !keep {
			if err := w.Flush(); err != nil {
				return
			}
		}
		if !keep {
			return
		}
	}
}

// readRequest reads one request head and its body, and returns whether
// the connection stays open and the response to send.
func readRequest(r *bufio.Reader) (keep bool, resp []byte, err error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return false, nil, err
	}
	// METHOD SP TARGET SP HTTP/1.x CRLF
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 < 0 {
		return false, nil, errBad
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 < 0 {
		return false, nil, errBad
	}
	var path [16]byte
	np := copy(path[:], rest[:sp2])
	if sp2 > len(path) {
		np = 0 // too long for any known path
	}
	http10 := bytes.HasPrefix(rest[sp2+1:], []byte("HTTP/1.0"))
	keep = !http10
	var clen int64
	chunked := false
	for {
		line, err = r.ReadSlice('\n')
		if err != nil {
			return false, nil, err
		}
		if len(line) <= 2 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return false, nil, errBad
		}
		name := line[:colon]
		value := bytes.TrimSpace(line[colon+1:])
		switch {
		case asciiEqualFold(name, "content-length"):
			clen, err = strconv.ParseInt(string(value), 10, 64)
			if err != nil || clen < 0 {
				return false, nil, errBad
			}
		case asciiEqualFold(name, "transfer-encoding"):
			chunked = asciiContainsFold(value, "chunked")
		case asciiEqualFold(name, "connection"):
			if asciiContainsFold(value, "close") {
				keep = false
			} else if asciiContainsFold(value, "keep-alive") {
				keep = true
			}
		}
	}
	if chunked {
		if err := discardChunked(r); err != nil {
			return false, nil, err
		}
	} else if clen > 0 {
		if _, err := r.Discard(int(clen)); err != nil {
			return false, nil, err
		}
	}
	k := 0
	if !keep {
		k = 1
	}
	switch string(path[:np]) {
	case "/small":
		return keep, respSmall[k], nil
	case "/100k":
		return keep, respBig[k], nil
	case "/post":
		return keep, respSmall[k], nil
	}
	return keep, respNotFound[k], nil
}

func discardChunked(r *bufio.Reader) error {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimSpace(line)
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(line), 16, 64)
		if err != nil || n < 0 {
			return errBad
		}
		if n == 0 {
			// Trailer fields until the empty line.
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(line) <= 2 {
					return nil
				}
			}
		}
		if _, err := r.Discard(int(n)); err != nil {
			return err
		}
		if _, err := r.Discard(2); err != nil {
			return err
		}
	}
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

func asciiContainsFold(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if asciiEqualFold(b[i:i+len(s)], s) {
			return true
		}
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
