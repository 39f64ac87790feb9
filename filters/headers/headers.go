// Package headers is the built-in filter that adds and removes header
// fields on the upstream request and on the response.
package headers

import (
	"github.com/weirproxy/weir/message"
	"github.com/weirproxy/weir/proxy"
)

// Field is one name/value pair to set.
type Field struct{ Name, Value string }

// Filter sets and removes fields. Set replaces any field of the same name.
type Filter struct {
	SetRequest     []Field
	RemoveRequest  []string
	SetResponse    []Field
	RemoveResponse []string
}

var (
	_ proxy.UpstreamRequestFilter = (*Filter)(nil)
	_ proxy.ResponseFilter        = (*Filter)(nil)
)

// UpstreamRequestFilter implements proxy.UpstreamRequestFilter.
func (f *Filter) UpstreamRequestFilter(_ *proxy.Session, req *message.Request) error {
	apply(&req.Header, f.RemoveRequest, f.SetRequest)
	return nil
}

// ResponseFilter implements proxy.ResponseFilter.
func (f *Filter) ResponseFilter(_ *proxy.Session, resp *message.Response) error {
	apply(&resp.Header, f.RemoveResponse, f.SetResponse)
	return nil
}

func apply(h *message.Header, remove []string, set []Field) {
	for _, n := range remove {
		h.Del(n)
	}
	for _, kv := range set {
		h.SetString(kv.Name, kv.Value)
	}
}
