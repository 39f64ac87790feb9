// Command origin is a tiny demo HTTP server to put behind Weir. It answers
// every request with a line naming itself and echoing what it received, so
// you can see what Weir forwards (Host, X-Forwarded-For, Via ...) and
// over which protocol.
//
//	go run ./examples/origin -listen 127.0.0.1:9000 -name a
//	go run ./examples/origin -listen 127.0.0.1:9100 -name grpc -h2c
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"sort"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on")
	name := flag.String("name", "origin", "name to put in every response")
	h2c := flag.Bool("h2c", false, "also accept cleartext HTTP/2 with prior knowledge (for h2c:// peers)")
	flag.Parse()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s saw %s %s over %s (Host: %s)\n", *name, r.Method, r.URL.RequestURI(), r.Proto, r.Host)
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s: %s\n", k, r.Header[k])
		}
	})
	srv := &http.Server{Addr: *listen, Handler: h, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(*h2c)
	log.Printf("origin %q listening on http://%s", *name, *listen)
	log.Fatal(srv.ListenAndServe())
}
