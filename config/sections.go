package config

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"

	"github.com/weirproxy/weir/limits"
	"go.yaml.in/yaml/v3"
)

// Valid values of the enumerated settings, the default first.
var (
	balancers        = []string{"round_robin", "weighted_round_robin", "least_conn", "p2c", "consistent_hash"}
	forwardedHeaders = []string{"x-forwarded", "forwarded", "both", "none"}
	logLevels        = []string{"info", "debug", "warn", "error"}
	logFormats       = []string{"text", "json"}
	healthTypes      = []string{"http", "tcp"}
)

// maxWeight is the largest peer weight.
const maxWeight = 1000

// defaultLimits returns the client-side limits of package limits.
func defaultLimits() Limits {
	return Limits{
		MaxRequestLine:     limits.MaxRequestLine,
		MaxHeaderBytes:     limits.MaxHeaderBytes,
		MaxHeaderFields:    limits.MaxHeaderFields,
		HeaderReadTimeout:  limits.HeaderReadTimeout,
		IdleTimeout:        limits.IdleTimeout,
		BodyReadTimeout:    limits.BodyReadTimeout,
		WriteTimeout:       limits.WriteTimeout,
		MaxRequestsPerConn: limits.MaxRequestsPerConn,
		MaxBodyBytes:       limits.MaxBodyBytes,
		MaxConnections:     limits.MaxConnections,
		MaxChunkLine:       limits.MaxChunkLine,
		MaxTrailerBytes:    limits.MaxTrailerBytes,
	}
}

// extensionPrefix starts the top-level keys Parse ignores.
const extensionPrefix = "x-"

// config decodes the top-level mapping.
func (d *decoder) config(root *yaml.Node) *Config {
	cfg := &Config{
		Upstreams:     make(map[string]*Upstream),
		Limits:        defaultLimits(),
		Proxy:         Proxy{ForwardedHeaders: forwardedHeaders[0], Via: true},
		Log:           Log{Level: logLevels[0], Format: logFormats[0], Access: "stdout"},
		ShutdownGrace: limits.ShutdownGrace,
	}
	root = deref(root)
	var routeRefs []routeRef // nodes of each route, for checking later
	var listenerBounds []bound
	var forwardAt []*yaml.Node // the address node of each forward proxy
	var metricsAt *yaml.Node   // the address node of metrics
	top := d.mapping(root, "the configuration", "", fields{
		// Top-level keys starting with "x-" are ignored, so that they can
		// hold anchors for the rest of the file to refer to.
		extensionPrefix: func(entry) {},
		"listeners":     func(e entry) { cfg.Listeners, listenerBounds = d.listeners(e) },
		"forward_proxies": func(e entry) {
			cfg.ForwardProxies, forwardAt = d.forwardProxies(e)
		},
		"routes":    func(e entry) { cfg.Routes, routeRefs = d.routes(e) },
		"upstreams": func(e entry) { d.upstreams(e, cfg) },
		"limits":    func(e entry) { d.limits(e, &cfg.Limits) },
		"proxy":     func(e entry) { d.proxy(e, &cfg.Proxy) },
		"log":       func(e entry) { d.log(e, &cfg.Log) },
		"metrics":   func(e entry) { cfg.Metrics, metricsAt = d.metrics(e) },
		"shutdown_grace": func(e entry) {
			d.duration(e.v, "shutdown_grace", true, &cfg.ShutdownGrace)
		},
	})
	if fe, ok := top["forward_proxies"]; ok && !emptyList(fe.v) {
		// Forward proxies alone are a whole configuration.
	} else if e, ok := top["listeners"]; !ok {
		if root == nil || isNull(root) {
			d.errorf(root, "the configuration is empty: at least one listener or forward proxy is required")
		} else if root.Kind == yaml.MappingNode {
			d.errorf(root, "no listeners: at least one is required, like listeners: [{address: \":8080\"}], unless forward_proxies lists a forward proxy")
		}
	} else if emptyList(e.v) {
		d.errorf(e.k, "listeners is empty: at least one listener or forward proxy is required")
	}
	d.checkForwardAddresses(cfg.ForwardProxies, listenerBounds, forwardAt)
	d.checkMetricsAddress(cfg, listenerBounds, forwardAt, metricsAt)
	for i := range cfg.ForwardProxies {
		if fp := &cfg.ForwardProxies[i]; fp.AccessLog == "" {
			fp.AccessLog = cfg.Log.Access
		}
	}
	for i := range cfg.Listeners {
		if h := &cfg.Listeners[i].HTTP2; h.MaxHeaderListSize == 0 {
			h.MaxHeaderListSize = cfg.Limits.MaxHeaderBytes
		}
	}
	d.checkRouteUpstreams(cfg, routeRefs)
	return cfg
}

// routeRef holds the nodes of one route that later checks point at.
type routeRef struct {
	upstream *yaml.Node // the upstream value; nil when there is none
	grpcWeb  *yaml.Node // grpc_web: true; nil otherwise
}

// checkRouteUpstreams reports routes that send to an undefined upstream,
// and gRPC-Web routes whose upstream does not speak HTTP/2.
func (d *decoder) checkRouteUpstreams(cfg *Config, refs []routeRef) {
	for i, r := range cfg.Routes {
		if r.Upstream == "" {
			continue
		}
		u := cfg.Upstreams[r.Upstream]
		if u == nil {
			d.errorf(refs[i].upstream, "route %q sends to upstream %q, which is not defined%s",
				clip(r.Name), clip(r.Upstream), didYouMean(r.Upstream, cfg.UpstreamOrder))
			continue
		}
		if at := refs[i].grpcWeb; at != nil && len(u.Peers) > 0 && u.Scheme != "h2c" && u.Scheme != "h2" {
			d.errorf(at, "route %q translates gRPC-Web to gRPC, which needs HTTP/2 peers, but upstream %q uses %s://; use h2c:// or h2:// peers",
				clip(r.Name), clip(r.Upstream), u.Scheme)
		}
	}
}

// named tracks the names given to a list of items, to report duplicates.
type named map[string]*yaml.Node

func (m named) check(d *decoder, kind, name string, at *yaml.Node) {
	if first, dup := m[name]; dup {
		d.errorf(at, "%s name %q is used twice (first at line %d)", kind, clip(name), first.Line)
		return
	}
	m[name] = at
}

// listeners decodes the listeners list. It also returns the addresses
// they listen on, for checking the forward proxies' against.
func (d *decoder) listeners(e entry) ([]Listener, []bound) {
	items, _ := d.list(e.v, "listeners")
	var out []Listener
	names := make(named)
	var bounds []bound
	for i, item := range items {
		if item.Kind == yaml.ScalarNode && !isNull(item) {
			d.errorf(item, "expected a mapping for listener, got %s; write - address: %q", describe(item), clip(item.Value))
			continue
		}
		l := Listener{Name: fmt.Sprintf("listener-%d", i+1), HTTP2: defaultHTTP2(), Engine: EngineLoop}
		nameAt := item
		var addrAt *yaml.Node
		var protos listenerProtocols
		f := d.mapping(item, "listener", "in listener", fields{
			"name": func(e entry) {
				if s, ok := d.name(e.v, "listener name"); ok {
					l.Name, nameAt = s, e.v
				}
			},
			"address": func(e entry) {
				if s, ok := d.str(e.v, "address"); ok {
					l.Address, addrAt = s, e.v
				}
			},
			"tls":    func(e entry) { l.TLS = d.listenerTLS(e, &protos, false) },
			"http2":  func(e entry) { d.http2(e, &l.HTTP2, &protos) },
			"http3":  func(e entry) { d.http3(e, &l.HTTP3, &protos) },
			"engine": func(e entry) { d.enum(e.v, "engine", []string{EngineLoop, EngineGoroutine}, &l.Engine) },
		})
		if item.Kind != yaml.MappingNode && !isNull(item) {
			continue // already reported
		}
		names.check(d, "listener", l.Name, nameAt)
		d.checkProtocols(&l, &protos)
		if _, ok := f["address"]; !ok {
			d.errorf(item, "listener needs an address, like address: \":8080\"")
		} else if addrAt != nil {
			host, port, msg := splitListenAddress(l.Address)
			if msg != "" {
				d.errorf(addrAt, "invalid address %q for listener: %s", clip(l.Address), msg)
			} else {
				if c := collision("listener", l.Address, host, port, bounds); c != "" {
					d.errorf(addrAt, "%s", c)
				}
				bounds = append(bounds, bound{host: host, port: port, kind: "listener", name: l.Name, at: addrAt})
			}
		}
		out = append(out, l)
	}
	return out, bounds
}

// name checks the name of a listener, route or upstream.
func (d *decoder) name(n *yaml.Node, what string) (string, bool) {
	s, ok := d.str(n, what)
	if !ok {
		return "", false
	}
	if msg := checkName(s); msg != "" {
		d.errorf(n, "invalid %s %q: %s", what, clip(s), msg)
		return "", false
	}
	return s, true
}

// routes decodes the routes list. It also returns, for each route, the
// nodes later checks point at.
func (d *decoder) routes(e entry) ([]Route, []routeRef) {
	items, _ := d.list(e.v, "routes")
	var out []Route
	var refs []routeRef
	names := make(named)
	for i, item := range items {
		r := Route{Name: fmt.Sprintf("route-%d", i+1)}
		nameAt := item
		var ref routeRef
		f := d.mapping(item, "route", "in route", fields{
			"name": func(e entry) {
				if s, ok := d.name(e.v, "route name"); ok {
					r.Name, nameAt = s, e.v
				}
			},
			"match": func(e entry) { d.match(e, &r.Match) },
			"upstream": func(e entry) {
				if s, ok := d.str(e.v, "upstream"); ok {
					r.Upstream, ref.upstream = s, e.v
				}
			},
			"set_host": func(e entry) {
				if s, ok := d.str(e.v, "set_host"); ok {
					if msg := checkAuthority(s); msg != "" {
						d.errorf(e.v, "invalid set_host %q: %s", clip(s), msg)
					} else {
						r.SetHost = s
					}
				}
			},
			"request_headers": func(e entry) {
				r.AddRequestHeaders, r.RemoveRequestHeaders = d.headerOps(e, "request_headers", true)
			},
			"response_headers": func(e entry) {
				r.AddResponseHeaders, r.RemoveResponseHeaders = d.headerOps(e, "response_headers", false)
			},
			"grpc_web": func(e entry) {
				if d.boolean(e.v, "grpc_web", &r.GRPCWeb) && r.GRPCWeb {
					ref.grpcWeb = e.v
				}
			},
		})
		if item.Kind != yaml.MappingNode && !isNull(item) {
			continue
		}
		names.check(d, "route", r.Name, nameAt)
		if u, ok := f["upstream"]; !ok {
			d.errorf(item, "route %q needs an upstream, like upstream: backend", clip(r.Name))
		} else if ref.upstream != nil && r.Upstream == "" {
			d.errorf(u.v, "route %q has an empty upstream name", clip(r.Name))
		}
		out = append(out, r)
		refs = append(refs, ref)
	}
	return out, refs
}

// match decodes a route's match conditions.
func (d *decoder) match(e entry, m *Match) {
	d.mapping(e.v, "match", "in match", fields{
		"host": func(e entry) {
			values, nodes := d.strList(e.v, "host")
			for i, h := range values {
				if norm, msg := normaliseMatchHost(h); msg != "" {
					d.errorf(nodes[i], "invalid host %q: %s", clip(h), msg)
				} else if !slices.Contains(m.Hosts, norm) {
					m.Hosts = append(m.Hosts, norm)
				}
			}
		},
		"path_prefix": func(e entry) { d.path(e.v, "path_prefix", &m.PathPrefix) },
		"path":        func(e entry) { d.path(e.v, "path", &m.Path) },
		"path_regex": func(e entry) {
			s, ok := d.str(e.v, "path_regex")
			if !ok {
				return
			}
			if _, err := regexp.Compile(s); err != nil {
				msg := err.Error()
				var se *syntax.Error
				if errors.As(err, &se) {
					msg = fmt.Sprintf("%s: %q", se.Code, clip(se.Expr))
				}
				d.errorf(e.v, "invalid path_regex %q: %s", clip(s), msg)
				return
			}
			m.PathRegex = s
		},
		"method": func(e entry) {
			values, nodes := d.strList(e.v, "method")
			for i, meth := range values {
				if !isToken(meth) {
					d.errorf(nodes[i], "invalid method %q: methods are tokens, like GET or POST", clip(meth))
				} else if up := strings.ToUpper(meth); !slices.Contains(m.Methods, up) {
					m.Methods = append(m.Methods, up)
				}
			}
		},
		"headers": func(e entry) {
			m.Headers = d.headerMap(e.v, "match.headers", "in match.headers", func(n *yaml.Node, name string) bool {
				if isNull(n) {
					d.errorf(n, "missing value for header %q in match.headers: give the exact value, or \"*\" to require only that the header is present", clip(name))
					return false
				}
				return true
			})
		},
	})
}

// path stores a path that starts with "/" into *dst.
func (d *decoder) path(n *yaml.Node, name string, dst *string) {
	s, ok := d.str(n, name)
	if !ok {
		return
	}
	if msg := checkPath(s); msg != "" {
		d.errorf(n, "invalid %s %q: %s", name, clip(s), msg)
		return
	}
	*dst = s
}

// headerOps decodes request_headers or response_headers: {add, remove}.
func (d *decoder) headerOps(e entry, name string, request bool) (add map[string]string, remove []string) {
	d.mapping(e.v, name, "in "+name, fields{
		"add": func(e entry) {
			add = d.headerMap(e.v, name+".add", "in "+name+".add", func(n *yaml.Node, field string) bool {
				if msg := managedHeader(field, request); msg != "" {
					d.errorf(n, "%s.add cannot set %q: %s", name, clip(field), msg)
					return false
				}
				return true
			})
		},
		"remove": func(e entry) {
			values, nodes := d.strList(e.v, name+".remove")
			for i, field := range values {
				switch {
				case !isToken(field):
					d.errorf(nodes[i], "invalid header name %q in %s.remove: names are tokens, like X-Request-Id", clip(field), name)
				case managedHeader(field, request) != "":
					d.errorf(nodes[i], "%s.remove cannot remove %q: %s", name, clip(field), managedHeader(field, request))
				case !containsFold(remove, field):
					remove = append(remove, field)
				}
			}
		},
	})
	return add, remove
}

// headerMap decodes a mapping from header field names to values. Names are
// tokens and unique ignoring case; values may not hold control characters.
// accept is called with each value node and name before the value is
// checked; returning false drops the field.
func (d *decoder) headerMap(n *yaml.Node, name, what string, accept func(v *yaml.Node, field string) bool) map[string]string {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "expected a mapping for %s, got %s", name, describe(n))
		return nil
	}
	out := make(map[string]string)
	first := make(map[string]*yaml.Node) // by lower-case name
	for _, e := range d.entries(n, what) {
		lower := strings.ToLower(e.key)
		switch {
		case !isToken(e.key):
			d.errorf(e.k, "invalid header name %q %s: names are tokens, like X-Request-Id", clip(e.key), what)
			continue
		case first[lower] != nil:
			d.errorf(e.k, "header %q appears twice %s (as %q at line %d); names ignore case", clip(e.key), what, clip(first[lower].Value), first[lower].Line)
			continue
		}
		first[lower] = e.k
		if !accept(e.v, e.key) {
			continue
		}
		value := ""
		if !isNull(e.v) {
			s, ok := d.str(e.v, name+" value")
			if !ok {
				continue
			}
			value = s
		}
		if msg := checkHeaderValue(value); msg != "" {
			d.errorf(e.v, "invalid value for header %q %s: %s", clip(e.key), what, msg)
			continue
		}
		out[e.key] = value
	}
	return out
}

// upstreams decodes the upstreams mapping.
func (d *decoder) upstreams(e entry, cfg *Config) {
	if isNull(e.v) {
		return
	}
	if e.v.Kind != yaml.MappingNode {
		d.errorf(e.v, "expected a mapping from names to upstreams for upstreams, got %s", describe(e.v))
		return
	}
	for _, ue := range d.entries(e.v, "in upstreams") {
		if msg := checkName(ue.key); msg != "" {
			d.errorf(ue.k, "invalid upstream name %q: %s", clip(ue.key), msg)
			continue
		}
		cfg.Upstreams[ue.key] = d.upstream(ue)
		cfg.UpstreamOrder = append(cfg.UpstreamOrder, ue.key)
	}
}

// upstream decodes one upstream; e.key is its name.
func (d *decoder) upstream(e entry) *Upstream {
	u := &Upstream{
		Name:     e.key,
		Balancer: balancers[0],
		Keepalive: Keepalive{
			MaxIdle:     limits.PoolMaxIdlePerPeer,
			MaxPerPeer:  limits.PoolMaxPerPeer,
			IdleTimeout: limits.PoolIdleTimeout,
		},
		Timeouts: Timeouts{
			Connect:        limits.ConnectTimeout,
			ResponseHeader: limits.ResponseHeaderTimeout,
			Idle:           limits.UpstreamIdleTimeout,
			Request:        limits.RequestTimeout,
		},
		Retries:                limits.MaxRetries,
		MaxResponseHeaderBytes: limits.MaxResponseHeaderBytes,
		Passive: Passive{
			MaxFails: limits.PassiveMaxFails,
			EjectFor: limits.PassiveEjectFor,
		},
	}
	what := fmt.Sprintf("in upstream %q", clip(e.key))
	var balancerAt, hashOnAt *yaml.Node
	var keepalive, health map[string]entry
	f := d.mapping(e.v, fmt.Sprintf("upstream %q", clip(e.key)), what, fields{
		"peers": func(e entry) { u.Peers, u.Scheme = d.peers(e, u.Name) },
		"tls":   func(e entry) { u.TLS = d.upstreamTLS(e) },
		"balancer": func(e entry) {
			if d.enum(e.v, "balancer", balancers, &u.Balancer) {
				balancerAt = e.v
			}
		},
		"hash_on": func(e entry) {
			s, ok := d.str(e.v, "hash_on")
			if !ok {
				return
			}
			if msg := checkHashOn(s); msg != "" {
				d.errorf(e.v, "invalid hash_on %q%s", clip(s), msg)
				return
			}
			u.HashOn, hashOnAt = s, e.v
		},
		"keepalive": func(e entry) { keepalive = d.keepalive(e, &u.Keepalive) },
		"timeouts":  func(e entry) { d.timeouts(e, &u.Timeouts) },
		"retries": func(e entry) {
			d.intField(e.v, "retries", 0, math.MaxInt, &u.Retries)
		},
		"max_response_header_bytes": func(e entry) {
			d.sizeField(e.v, "max_response_header_bytes", 1, &u.MaxResponseHeaderBytes)
		},
		"health_check":   func(e entry) { u.HealthCheck, health = d.healthCheck(e) },
		"passive_health": func(e entry) { d.passive(e, &u.Passive) },
	})
	if e.v.Kind != yaml.MappingNode && !isNull(e.v) {
		return u
	}
	if p, ok := f["peers"]; !ok || emptyList(p.v) {
		d.errorf(e.k, "upstream %q has no peers: list them under peers, like peers: [\"http://10.0.0.1:8080\"]", clip(u.Name))
	} else if len(u.Peers) > MaxPeers {
		d.errorf(p.k, "upstream %q has %d peers; at most %d are allowed in one upstream", clip(u.Name), len(u.Peers), MaxPeers)
	}
	switch {
	case u.Balancer == "consistent_hash" && u.HashOn == "" && f["hash_on"].v == nil:
		at := balancerAt
		if at == nil {
			at = e.k
		}
		d.errorf(at, "balancer consistent_hash needs hash_on: client_ip, path, header:NAME or cookie:NAME")
	case u.Balancer != "consistent_hash" && hashOnAt != nil:
		d.errorf(hashOnAt, "hash_on is only used by balancer consistent_hash, not %s", u.Balancer)
	}
	if u.Scheme == "" {
		u.Scheme = "http"
	}
	d.checkUpstreamScheme(u, f, keepalive, health)
	return u
}

// checkUpstreamScheme checks the settings of upstream u that depend on
// the protocol its peers speak.
func (d *decoder) checkUpstreamScheme(u *Upstream, f, keepalive, health map[string]entry) {
	if x, ok := f["tls"]; ok && (u.Scheme == "http" || u.Scheme == "h2c") && len(u.Peers) > 0 {
		secure := map[string]string{"http": "https", "h2c": "h2"}[u.Scheme]
		d.errorf(x.k, "upstream %q has tls settings, but its peers are cleartext %s://; use %s:// peers for TLS", clip(u.Name), u.Scheme, secure)
	}
	if u.Scheme == "h2c" || u.Scheme == "h2" {
		for _, key := range []string{"max_idle", "max_per_peer"} {
			if x, ok := keepalive[key]; ok {
				d.errorf(x.k, "keepalive.%s applies to HTTP/1.1 peers; HTTP/2 peers (%s://) multiplex requests over few connections, so only keepalive.idle_timeout applies", key, u.Scheme)
			}
		}
	}
	if hc := u.HealthCheck; hc != nil && (u.Scheme == "h2c" || u.Scheme == "h2") {
		if _, ok := health["type"]; !ok {
			// HTTP/2 peers are often gRPC servers, which answer a plain
			// GET with an error status: they get a connection check
			// unless the configuration asks for an http one.
			hc.Type = "tcp"
		}
	}
}

// peers decodes an upstream's peers list, and returns the scheme they
// share.
func (d *decoder) peers(e entry, upstream string) ([]Peer, string) {
	items, _ := d.list(e.v, "peers")
	var out []Peer
	first := make(map[string]*yaml.Node)
	var scheme string
	var schemeAt *yaml.Node
	for _, item := range items {
		p := Peer{Weight: 1}
		var addrAt *yaml.Node
		switch item.Kind {
		case yaml.MappingNode:
			f := d.mapping(item, "peer", "in peer", fields{
				"address": func(e entry) {
					if s, ok := d.str(e.v, "peer address"); ok {
						p.Address, addrAt = s, e.v
					}
				},
				"weight": func(e entry) {
					d.intField(e.v, "weight", 1, maxWeight, &p.Weight)
				},
			})
			if _, ok := f["address"]; !ok {
				d.errorf(item, "peer needs an address, like address: \"http://10.0.0.1:8080\"")
			}
		case yaml.ScalarNode:
			if s, ok := d.str(item, "peer"); ok {
				p.Address, addrAt = s, item
			}
		default:
			d.errorf(item, "expected a peer address or a mapping {address, weight} in peers, got %s", describe(item))
		}
		if addrAt == nil {
			continue
		}
		sch, addr, msg := parsePeer(p.Address)
		if msg != "" {
			d.errorf(addrAt, "invalid peer %q in upstream %q: %s", clip(p.Address), clip(upstream), msg)
			continue
		}
		if scheme == "" {
			scheme, schemeAt = sch, addrAt
		} else if sch != scheme {
			d.errorf(addrAt, "peer %q in upstream %q uses %s://, but the first peer (line %d) uses %s://; all peers of one upstream speak the same protocol",
				clip(p.Address), clip(upstream), sch, schemeAt.Line, scheme)
			continue
		}
		if prev := first[addr]; prev != nil {
			d.errorf(addrAt, "peer %q appears twice in upstream %q (first at line %d); to send it more requests, give it a weight", clip(p.Address), clip(upstream), prev.Line)
			continue
		}
		first[addr] = addrAt
		p.Scheme, p.Address = sch, addr
		out = append(out, p)
	}
	return out, scheme
}

// keepalive decodes an upstream's keepalive section and returns the keys
// written.
func (d *decoder) keepalive(e entry, k *Keepalive) map[string]entry {
	var maxIdleAt *yaml.Node
	f := d.mapping(e.v, "keepalive", "in keepalive", fields{
		"max_idle": func(e entry) {
			if d.intField(e.v, "keepalive.max_idle", 0, math.MaxInt, &k.MaxIdle) {
				maxIdleAt = e.v
			}
		},
		"max_per_peer": func(e entry) {
			d.intField(e.v, "keepalive.max_per_peer", 0, math.MaxInt, &k.MaxPerPeer)
		},
		"idle_timeout": func(e entry) {
			d.duration(e.v, "keepalive.idle_timeout", false, &k.IdleTimeout)
		},
	})
	if k.MaxPerPeer > 0 && k.MaxIdle > k.MaxPerPeer {
		if maxIdleAt == nil {
			// The default cannot exceed an explicit bound.
			k.MaxIdle = k.MaxPerPeer
		} else {
			d.errorf(maxIdleAt, "keepalive.max_idle (%d) may not exceed keepalive.max_per_peer (%d)", k.MaxIdle, k.MaxPerPeer)
		}
	}
	return f
}

// timeouts decodes an upstream's timeouts section.
func (d *decoder) timeouts(e entry, t *Timeouts) {
	d.mapping(e.v, "timeouts", "in timeouts", fields{
		"connect": func(e entry) {
			d.duration(e.v, "timeouts.connect", false, &t.Connect)
		},
		"response_header": func(e entry) {
			d.duration(e.v, "timeouts.response_header", false, &t.ResponseHeader)
		},
		"idle": func(e entry) {
			d.duration(e.v, "timeouts.idle", false, &t.Idle)
		},
		"request": func(e entry) {
			d.duration(e.v, "timeouts.request", true, &t.Request)
		},
	})
}

// healthCheck decodes an upstream's health_check section, and returns
// it with the keys written.
func (d *decoder) healthCheck(e entry) (*HealthCheck, map[string]entry) {
	h := &HealthCheck{
		Type:     healthTypes[0],
		Path:     "/",
		Interval: limits.HealthInterval,
		Timeout:  limits.HealthTimeout,
		Rise:     limits.HealthRise,
		Fall:     limits.HealthFall,
	}
	var timeoutAt *yaml.Node
	f := d.mapping(e.v, "health_check", "in health_check", fields{
		"type": func(e entry) { d.enum(e.v, "health_check.type", healthTypes, &h.Type) },
		"path": func(e entry) { d.path(e.v, "health_check.path", &h.Path) },
		"host": func(e entry) {
			if s, ok := d.str(e.v, "health_check.host"); ok {
				if msg := checkAuthority(s); msg != "" {
					d.errorf(e.v, "invalid health_check.host %q: %s", clip(s), msg)
				} else {
					h.Host = s
				}
			}
		},
		"interval": func(e entry) {
			d.duration(e.v, "health_check.interval", false, &h.Interval)
		},
		"timeout": func(e entry) {
			if d.duration(e.v, "health_check.timeout", false, &h.Timeout) {
				timeoutAt = e.v
			}
		},
		"rise": func(e entry) { d.intField(e.v, "health_check.rise", 1, math.MaxInt, &h.Rise) },
		"fall": func(e entry) { d.intField(e.v, "health_check.fall", 1, math.MaxInt, &h.Fall) },
		"expect_status": func(e entry) {
			items := []*yaml.Node{e.v}
			if e.v.Kind != yaml.ScalarNode {
				items, _ = d.list(e.v, "health_check.expect_status")
			}
			for _, item := range items {
				if code, ok := d.integer(item, "health_check.expect_status", 100, 599); ok && !slices.Contains(h.ExpectStatus, int(code)) {
					h.ExpectStatus = append(h.ExpectStatus, int(code))
				}
			}
		},
	})
	if h.Timeout > h.Interval {
		if timeoutAt == nil {
			h.Timeout = h.Interval
		} else {
			d.errorf(timeoutAt, "health_check.timeout (%s) may not exceed health_check.interval (%s)", h.Timeout, h.Interval)
		}
	}
	if h.Type == "tcp" {
		for _, key := range []string{"path", "host", "expect_status"} {
			if x, ok := f[key]; ok {
				d.errorf(x.k, "health_check.%s is only used by http health checks, and this one is tcp", key)
			}
		}
	}
	return h, f
}

// passive decodes an upstream's passive_health section.
func (d *decoder) passive(e entry, p *Passive) {
	d.mapping(e.v, "passive_health", "in passive_health", fields{
		"max_fails": func(e entry) {
			d.intField(e.v, "passive_health.max_fails", 0, math.MaxInt, &p.MaxFails)
		},
		"eject_for": func(e entry) {
			d.duration(e.v, "passive_health.eject_for", false, &p.EjectFor)
		},
	})
}

// limits decodes the limits section.
func (d *decoder) limits(e entry, l *Limits) {
	var lineAt *yaml.Node
	d.mapping(e.v, "limits", "in limits", fields{
		"max_request_line": func(e entry) {
			if d.sizeField(e.v, "limits.max_request_line", 1, &l.MaxRequestLine) {
				lineAt = e.v
			}
		},
		"max_header_bytes": func(e entry) {
			d.sizeField(e.v, "limits.max_header_bytes", 1, &l.MaxHeaderBytes)
		},
		"max_header_fields": func(e entry) {
			d.intField(e.v, "limits.max_header_fields", 1, math.MaxInt, &l.MaxHeaderFields)
		},
		"header_read_timeout": func(e entry) {
			d.duration(e.v, "limits.header_read_timeout", false, &l.HeaderReadTimeout)
		},
		"idle_timeout": func(e entry) {
			d.duration(e.v, "limits.idle_timeout", false, &l.IdleTimeout)
		},
		"body_read_timeout": func(e entry) {
			d.duration(e.v, "limits.body_read_timeout", false, &l.BodyReadTimeout)
		},
		"write_timeout": func(e entry) {
			d.duration(e.v, "limits.write_timeout", false, &l.WriteTimeout)
		},
		"max_requests_per_conn": func(e entry) {
			d.intField(e.v, "limits.max_requests_per_conn", 1, math.MaxInt, &l.MaxRequestsPerConn)
		},
		"max_body_bytes": func(e entry) {
			if v, ok := d.size(e.v, "limits.max_body_bytes", 0); ok {
				l.MaxBodyBytes = v
			}
		},
		"max_connections": func(e entry) {
			d.intField(e.v, "limits.max_connections", 0, math.MaxInt, &l.MaxConnections)
		},
		"max_chunk_line": func(e entry) {
			d.sizeField(e.v, "limits.max_chunk_line", 1, &l.MaxChunkLine)
		},
		"max_trailer_bytes": func(e entry) {
			d.sizeField(e.v, "limits.max_trailer_bytes", 1, &l.MaxTrailerBytes)
		},
	})
	if l.MaxRequestLine > l.MaxHeaderBytes {
		at := lineAt
		if at == nil {
			at = e.v
		}
		d.errorf(at, "limits.max_request_line (%d bytes) may not exceed limits.max_header_bytes (%d bytes), which includes the request line", l.MaxRequestLine, l.MaxHeaderBytes)
	}
}

// proxy decodes the proxy section.
func (d *decoder) proxy(e entry, p *Proxy) {
	d.mapping(e.v, "proxy", "in proxy", fields{
		"forwarded_headers": func(e entry) {
			d.enum(e.v, "proxy.forwarded_headers", forwardedHeaders, &p.ForwardedHeaders)
		},
		"via":             func(e entry) { d.boolean(e.v, "proxy.via", &p.Via) },
		"trust_forwarded": func(e entry) { d.boolean(e.v, "proxy.trust_forwarded", &p.TrustForwarded) },
	})
}

// log decodes the log section.
func (d *decoder) log(e entry, l *Log) {
	d.mapping(e.v, "log", "in log", fields{
		"level":  func(e entry) { d.enum(e.v, "log.level", logLevels, &l.Level) },
		"format": func(e entry) { d.enum(e.v, "log.format", logFormats, &l.Format) },
		"access": func(e entry) {
			if s, ok := d.accessLog(e.v, "log.access"); ok {
				l.Access = s
			}
		},
	})
}

// emptyList reports whether n is null or a list without items.
func emptyList(n *yaml.Node) bool {
	return isNull(n) || (n.Kind == yaml.SequenceNode && len(n.Content) == 0)
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
