package socks5

import (
	"errors"
	"io"
)

// ReadGreeting reads a greeting (see ParseGreeting).
func ReadGreeting(r io.Reader) ([]Method, error) {
	var buf [2 + MaxMethods]byte
	var m []byte
	err := readMessage(r, buf[:], func(b []byte) (n int, err error) {
		m, n, err = parseGreeting(b)
		return n, err
	})
	if err != nil {
		return nil, err
	}
	methods := make([]Method, len(m))
	for i, c := range m {
		methods[i] = Method(c)
	}
	return methods, nil
}

// ReadUserPass reads an RFC 1929 username/password request (see
// ParseUserPass).
func ReadUserPass(r io.Reader) (user, pass string, err error) {
	var buf [MaxMessageLen]byte
	var u, p []byte
	err = readMessage(r, buf[:], func(b []byte) (n int, err error) {
		u, p, n, err = parseUserPass(b)
		return n, err
	})
	if err != nil {
		return "", "", err
	}
	return string(u), string(p), nil
}

// ReadRequest reads a request (see ParseRequest).
func ReadRequest(r io.Reader) (Request, error) {
	var buf [4 + 1 + MaxDomainLen + 2]byte
	var req Request
	err := readMessage(r, buf[:], func(b []byte) (n int, err error) {
		req, n, err = parseRequest(b)
		return n, err
	})
	if err != nil {
		return Request{}, err
	}
	return req, nil
}

// ReadReply reads a server's reply (see ParseReply).
func ReadReply(r io.Reader) (ReplyCode, Addr, error) {
	var buf [4 + 1 + MaxDomainLen + 2]byte
	var code ReplyCode
	var bound Addr
	err := readMessage(r, buf[:], func(b []byte) (n int, err error) {
		code, bound, n, err = parseReply(b)
		return n, err
	})
	if err != nil {
		return 0, Addr{}, err
	}
	return code, bound, nil
}

// maxEmptyReads bounds how many reads in a row may return neither bytes
// nor an error before a Read function gives up with io.ErrNoProgress.
const maxEmptyReads = 100

// readMessage reads into buf until parse accepts or rejects what it holds.
// parse follows the unexported parsers' convention: with ErrIncomplete it
// returns the total length needed so far, which is never more than
// len(buf) for the buffers above, so a read never asks for more bytes than
// the message has.
func readMessage(r io.Reader, buf []byte, parse func([]byte) (int, error)) error {
	have, empty := 0, 0
	var rerr error
	for {
		need, err := parse(buf[:have])
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrIncomplete) {
			return err
		}
		if rerr != nil {
			if rerr == io.EOF && have > 0 {
				rerr = io.ErrUnexpectedEOF
			}
			return rerr
		}
		if need > len(buf) {
			return errors.New("socks5: internal error: message longer than its buffer")
		}
		var m int
		m, rerr = r.Read(buf[have:need])
		have += m
		if m == 0 && rerr == nil {
			if empty++; empty >= maxEmptyReads {
				return io.ErrNoProgress
			}
		} else {
			empty = 0
		}
	}
}
