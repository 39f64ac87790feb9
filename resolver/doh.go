package resolver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
)

// DoHContentType is the media type of DNS messages over HTTPS (RFC 8484).
const DoHContentType = "application/dns-message"

// DoH is a [Backend] that speaks DNS over HTTPS (RFC 8484): each question
// is POSTed as an application/dns-message body to one URL, with ID 0 as
// the RFC recommends so that identical queries look identical to HTTP
// caches. The answer must come back with status 200, the same media type
// and at most MaxMessageSize bytes. The HTTP client's own dialer resolves
// the DoH server's name, so give it an IP address in the URL or a client
// that does not depend on this resolver.
type DoH struct {
	url    string // as sent
	shown  string // in errors, without any password
	client *http.Client
}

// NewDoH returns a DoH backend for the https URL rawURL (for example
// "https://dns.example/dns-query"), sending requests through client (nil
// means http.DefaultClient). The client's Timeout, transport and TLS
// settings apply; the Resolver's lookup timeout bounds each query as well.
func NewDoH(rawURL string, client *http.Client) (*DoH, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("resolver: DoH URL: %v", err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("resolver: DoH URL %q: want https://host/path", rawURL)
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &DoH{url: u.String(), shown: u.Redacted(), client: client}, nil
}

// Query asks the DoH server for the addresses of name in family f.
func (d *DoH) Query(ctx context.Context, name string, f Family) (Answer, error) {
	q, err := newQuestion(name, f)
	if err != nil {
		return Answer{}, err
	}
	msg, err := buildQuery(0, q, false)
	if err != nil {
		return Answer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(msg[2:]))
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Content-Type", DoHContentType)
	req.Header.Set("Accept", DoHContentType)
	res, err := d.client.Do(req)
	if err != nil {
		return Answer{}, d.fail(netError(ctx, err))
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return Answer{}, d.fail(fmt.Errorf("%w: HTTP status %d", ErrServerFailure, res.StatusCode))
	}
	if mt, _, err := mime.ParseMediaType(res.Header.Get("Content-Type")); err != nil || mt != DoHContentType {
		return Answer{}, d.fail(fmt.Errorf("%w: content type %q", ErrServerFailure, res.Header.Get("Content-Type")))
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, MaxMessageSize+1))
	if err != nil {
		return Answer{}, d.fail(netError(ctx, err))
	}
	if len(body) > MaxMessageSize {
		return Answer{}, d.fail(errors.New("answer larger than " + strconv.Itoa(MaxMessageSize) + " bytes"))
	}
	resp, err := parseResponse(body, 0, q)
	if err != nil {
		return Answer{}, d.fail(fmt.Errorf("%w: %v", ErrServerFailure, err))
	}
	if resp.truncated {
		return Answer{}, d.fail(fmt.Errorf("%w: truncated answer", ErrServerFailure))
	}
	ans, err := resp.answer()
	if err != nil {
		return Answer{}, d.fail(err)
	}
	return ans, nil
}

func (d *DoH) fail(err error) error {
	return fmt.Errorf("DoH %s: %w", d.shown, err)
}
