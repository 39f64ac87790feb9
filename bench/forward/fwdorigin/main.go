// Command fwdorigin is the raw TCP origin of the forward-proxy benchmark
// (bench/forward/run.sh). It listens on two ports:
//
//	-source ADDR  writes 64 KiB chunks to every connection as fast as the
//	              reader takes them, until the peer closes (tunnel throughput)
//	-echo ADDR    reads one message of up to 4 KiB, writes it back and
//	              closes (tunnel setup rate). Closing first puts TIME_WAIT
//	              on the origin's side, so that a proxy which binds its
//	              outbound sockets before connecting (Dante does) does not
//	              run out of ephemeral ports at thousands of tunnels/s.
//
// Plain HTTP for absolute-form requests comes from bench/origin.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
)

func main() {
	source := flag.String("source", "127.0.0.1:18940", "streaming source `address`")
	echo := flag.String("echo", "127.0.0.1:18941", "echo `address`")
	flag.Parse()
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = byte('a' + i%26)
	}
	go listen(*source, func(c net.Conn) {
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	listen(*echo, func(c net.Conn) {
		var b [4096]byte
		n, err := c.Read(b[:])
		if err != nil {
			return
		}
		_, _ = c.Write(b[:n])
	})
}

func listen(addr string, serve func(net.Conn)) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "fwdorigin listening on %s\n", ln.Addr())
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
		go func() {
			defer c.Close()
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetNoDelay(true)
			}
			serve(c)
		}()
	}
}
