// Command tcpproxy is the floor of the proxy benchmark: a raw TCP
// pass-through that dials the origin once per client connection and
// copies bytes both ways with io.Copy. It parses nothing, so whatever an
// HTTP proxy costs above it is the price of understanding HTTP.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
)

func main() {
	from := flag.String("from", "127.0.0.1:8000", "listen `address`")
	to := flag.String("to", "127.0.0.1:9000", "origin `address`")
	flag.Parse()
	ln, err := net.Listen("tcp", *from)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "tcpproxy %s -> %s\n", ln.Addr(), *to)
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Printf("accept: %v", err)
			continue
		}
		go pass(c.(*net.TCPConn), *to)
	}
}

func pass(client *net.TCPConn, to string) {
	defer client.Close()
	nc, err := net.Dial("tcp", to)
	if err != nil {
		return
	}
	up := nc.(*net.TCPConn)
	defer up.Close()
	_ = client.SetNoDelay(true)
	_ = up.SetNoDelay(true)
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, client)
		_ = up.CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(client, up)
	_ = client.CloseWrite()
	<-done
}
