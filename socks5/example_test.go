package socks5_test

import (
	"crypto/subtle"
	"io"
	"log"
	"net"
	"net/netip"
	"time"

	"github.com/weirproxy/weir/socks5"
)

// A CONNECT-only SOCKS5 server: the handshake, the caller's own dial, the
// reply, then the tunnel.
func ExampleServerHandshake() {
	ln, err := net.Listen("tcp", "127.0.0.1:1080")
	if err != nil {
		log.Fatal(err)
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			req, err := socks5.ServerHandshake(conn, &socks5.ServerConfig{
				Authenticate: func(user, pass string) bool {
					u := subtle.ConstantTimeCompare([]byte(user), []byte("alice"))
					p := subtle.ConstantTimeCompare([]byte(pass), []byte("secret"))
					return u&p == 1
				},
			})
			if err != nil {
				return // the failure reply, if any, has been sent
			}
			up, err := net.DialTimeout("tcp", req.Dst.String(), 10*time.Second)
			if err != nil {
				socks5.WriteReply(conn, socks5.ReplyFor(err), netip.AddrPort{})
				return
			}
			defer up.Close()
			bound := up.LocalAddr().(*net.TCPAddr).AddrPort()
			if err := socks5.WriteReply(conn, socks5.Succeeded, bound); err != nil {
				return
			}
			go io.Copy(up, conn)
			io.Copy(conn, up)
		}()
	}
}

// Reaching example.com through an upstream SOCKS5 proxy.
func ExampleClientHandshake() {
	conn, err := net.DialTimeout("tcp", "127.0.0.1:1080", 10*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := socks5.ClientHandshake(conn, "example.com:80", "alice", "secret"); err != nil {
		log.Fatal(err)
	}
	conn.SetDeadline(time.Time{})
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
}
