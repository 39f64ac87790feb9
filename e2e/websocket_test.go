package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/weirproxy/weir"
)

// TestWebSocketEcho: a WebSocket session through Weir carries messages
// both ways: the origin greets first, then echoes every message.
func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, websocket.Handler(func(ws *websocket.Conn) {
		if err := websocket.Message.Send(ws, "hello from origin"); err != nil {
			return
		}
		for {
			var msg string
			if err := websocket.Message.Receive(ws, &msg); err != nil {
				return
			}
			if err := websocket.Message.Send(ws, "echo: "+msg); err != nil {
				return
			}
		}
	}))
	p := startWeir(t, oneRouteConfig(o, "", ""), weir.Options{})

	ws, err := websocket.Dial("ws://"+p.addr+"/ws", "", "http://"+p.addr+"/")
	if err != nil {
		t.Fatalf("WebSocket handshake through Weir: %v", err)
	}
	defer ws.Close()
	_ = ws.SetDeadline(time.Now().Add(10 * time.Second))

	var greeting string
	if err := websocket.Message.Receive(ws, &greeting); err != nil || greeting != "hello from origin" {
		t.Fatalf("greeting %q (%v)", greeting, err)
	}
	msgs := []string{"one", "two", strings.Repeat("big", 40000), "", "last"}
	for i, m := range msgs {
		if err := websocket.Message.Send(ws, m); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
		if got != "echo: "+m {
			t.Fatalf("message %d: got %q, want %q", i, clip([]byte(got)), clip([]byte("echo: "+m)))
		}
	}
	// Several messages in flight at once, then their echoes in order.
	for i := range 10 {
		if err := websocket.Message.Send(ws, fmt.Sprint("burst ", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil || got != fmt.Sprint("echo: burst ", i) {
			t.Fatalf("burst echo %d: %q (%v)", i, got, err)
		}
	}
}
