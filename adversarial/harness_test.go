package adversarial

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirproxy/weir"
	"github.com/weirproxy/weir/internal/testutil"
)

// rewrite makes the scenario tests write what they observed into the
// expectation sections of their files instead of comparing:
//
//	go test ./adversarial -run TestScenarios -rewrite
//
// then review the diff: every changed expectation is a behaviour change.
var rewrite = flag.Bool("rewrite", false, "rewrite the expectations of testdata scenarios from observed results")

// A scenario file is a few comment lines saying what the case is and where
// it comes from, then sections, each opened by a line "-- name --":
//
//	-- config --           YAML added at the top level of Weir's configuration
//	-- upstream --         YAML added to the upstream (indented for you)
//	-- origin response --  what the origin answers, one section per request
//	                       (the last one repeats); "default" or no section:
//	                       200 "response N", N counting requests from 0
//	-- origin action --    how the origin answers, one section per request
//	                       (the last repeats): words among close, reset
//	                       (after the response), hang (answer nothing
//	                       more), per-byte=5ms, pause=300ms@40, none
//	-- send --             bytes the client sends; several sections are
//	                       sent as separate writes, 20ms apart
//	-- expect responses -- one line per response the client read:
//	                       status and quoted body
//	-- expect close --     close (Weir closed the connection) or keep-alive
//	-- origin requests --  one line per request the origin read, "[conn]"
//	                       first, or none; "junk" is an incomplete rest
//
// In byte sections (send, origin response) the line breaks of the file are
// not part of the bytes: write \r\n. Escapes: \r \n \t \s (space) \\ \xHH,
// and {{N*text}} repeats text (escapes allowed) N times.
type scenario struct {
	path     string
	comments string
	sections []section
}

type section struct {
	name string
	body string
}

const (
	secConfig    = "config"
	secUpstream  = "upstream"
	secOrigin    = "origin response"
	secAction    = "origin action"
	secSend      = "send"
	secResponses = "expect responses"
	secClose     = "expect close"
	secRequests  = "origin requests"
)

func parseScenario(path string) (*scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sc := &scenario{path: path}
	var cur *section
	var comments strings.Builder
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if line == "" {
			continue
		}
		trim := strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(trim, "-- ") && strings.HasSuffix(trim, " --") && len(trim) > 6 {
			name := strings.TrimSpace(trim[3 : len(trim)-3])
			switch name {
			case secConfig, secUpstream, secOrigin, secAction, secSend, secResponses, secClose, secRequests:
			default:
				return nil, fmt.Errorf("%s: unknown section %q", path, name)
			}
			sc.sections = append(sc.sections, section{name: name})
			cur = &sc.sections[len(sc.sections)-1]
			continue
		}
		if cur == nil {
			comments.WriteString(line)
		} else {
			cur.body += line
		}
	}
	sc.comments = comments.String()
	if len(sc.all(secSend)) == 0 {
		return nil, fmt.Errorf("%s: no send section", path)
	}
	return sc, nil
}

func (sc *scenario) all(name string) []string {
	var out []string
	for _, s := range sc.sections {
		if s.name == name {
			out = append(out, s.body)
		}
	}
	return out
}

func (sc *scenario) one(name string) (string, bool) {
	a := sc.all(name)
	if len(a) == 0 {
		return "", false
	}
	return a[0], true
}

// set replaces (or adds) a section's body.
func (sc *scenario) set(name, body string) {
	for i := range sc.sections {
		if sc.sections[i].name == name {
			sc.sections[i].body = body
			return
		}
	}
	sc.sections = append(sc.sections, section{name: name, body: body})
}

func (sc *scenario) render() string {
	var b strings.Builder
	b.WriteString(sc.comments)
	for _, s := range sc.sections {
		fmt.Fprintf(&b, "-- %s --\n", s.name)
		b.WriteString(s.body)
		if s.body != "" && !strings.HasSuffix(s.body, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// decodeBytes turns a byte section into bytes (see scenario).
func decodeBytes(text string) ([]byte, error) {
	out := []byte{} // empty, not nil: an origin response may be nothing
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSuffix(line, "\r")
		b, err := decodeLine(line)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		out = append(out, b...)
	}
	return out, nil
}

func decodeLine(s string) ([]byte, error) {
	var out []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '{' && strings.HasPrefix(s[i:], "{{") {
			end := matchBraces(s[i:])
			if end < 0 {
				return nil, fmt.Errorf("unclosed {{")
			}
			countText, text, ok := strings.Cut(s[i+2:i+end], "*")
			n, err := strconv.Atoi(countText)
			if !ok || err != nil || n < 0 || n > 1<<20 {
				return nil, fmt.Errorf("bad repeat %q", s[i:i+end+2])
			}
			unit, err := decodeLine(text)
			if err != nil {
				return nil, err
			}
			out = append(out, bytes.Repeat(unit, n)...)
			i += end + 1
			continue
		}
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 == len(s) {
			return nil, fmt.Errorf("trailing backslash")
		}
		i++
		switch s[i] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case 's':
			out = append(out, ' ')
		case '\\':
			out = append(out, '\\')
		case '{':
			out = append(out, '{')
		case 'x':
			if i+2 >= len(s) {
				return nil, fmt.Errorf("short \\x escape")
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("bad \\x escape")
			}
			out = append(out, byte(v))
			i += 2
		default:
			return nil, fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return out, nil
}

// matchBraces returns the index of the "}}" that closes the "{{" at the
// start of s (repeats nest), or -1.
func matchBraces(s string) int {
	depth := 0
	for i := 0; i+1 < len(s); i++ {
		switch s[i : i+2] {
		case "{{":
			depth++
			i++
		case "}}":
			if depth--; depth == 0 {
				return i
			}
			i++
		}
	}
	return -1
}

// observed is what one run of a scenario produced.
type observed struct {
	responses []string
	closed    bool
	origin    []string
}

func (o *observed) responsesText() string {
	if len(o.responses) == 0 {
		return "none\n"
	}
	return strings.Join(o.responses, "\n") + "\n"
}

func (o *observed) closeText() string {
	if o.closed {
		return "close\n"
	}
	return "keep-alive\n"
}

func (o *observed) originText() string {
	if len(o.origin) == 0 {
		return "none\n"
	}
	return strings.Join(o.origin, "\n") + "\n"
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.TrimSpace(l) != "" {
			b.WriteString(prefix)
		}
		b.WriteString(l)
	}
	return b.String()
}

// runScenario plays one scenario against a fresh recorder and Weir.
func runScenario(t *testing.T, sc *scenario) *observed {
	var originResponses [][]byte
	for _, body := range sc.all(secOrigin) {
		if strings.TrimSpace(body) == "default" {
			originResponses = append(originResponses, nil)
			continue
		}
		b, err := decodeBytes(body)
		if err != nil {
			t.Fatalf("origin response: %v", err)
		}
		originResponses = append(originResponses, b)
	}
	var actions []testutil.Action
	for _, body := range sc.all(secAction) {
		a, err := parseAction(body)
		if err != nil {
			t.Fatalf("origin action: %v", err)
		}
		actions = append(actions, a)
	}
	rec := testutil.NewRecorder(t, func(i int, _ *testutil.SimpleRequest) testutil.Action {
		var a testutil.Action
		if len(actions) > 0 {
			a = actions[min(i, len(actions)-1)]
		}
		a.Write = testutil.OKResponse(i)
		if len(originResponses) > 0 {
			if r := originResponses[min(i, len(originResponses)-1)]; r != nil {
				a.Write = r
			}
		}
		return a
	})
	up, _ := sc.one(secUpstream)
	cfg, _ := sc.one(secConfig)
	if !strings.Contains(up, "retries:") {
		// A scenario sees one attempt: a retry would make the origin's
		// record depend on the retry policy rather than on the framing.
		up += "retries: 0\n"
	}
	w := testutil.StartWeir(t, testutil.OneRoute(rec.Addr, indent(up, "    "), cfg+"shutdown_grace: 2s\n"), weir.Options{})

	var pieces [][]byte
	for _, body := range sc.all(secSend) {
		b, err := decodeBytes(body)
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		pieces = append(pieces, b)
	}
	wantClose := false
	wantResponses := 0
	if !*rewrite {
		if c, ok := sc.one(secClose); ok {
			wantClose = strings.TrimSpace(c) == "close"
		}
		if r, ok := sc.one(secResponses); ok && strings.TrimSpace(r) != "none" {
			wantResponses = len(strings.Split(strings.TrimSpace(r), "\n"))
		}
	}

	c, err := net.DialTimeout("tcp", w.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, p := range pieces {
		if i > 0 {
			// Pacing: the pieces must reach Weir as separate reads.
			<-time.After(20 * time.Millisecond)
		}
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(p); err != nil {
			// Weir may close early on a rejected head; what it answered is
			// still read below.
			break
		}
	}

	// Which responses answer HEAD (and so have no body) follows from the
	// requests sent, read with the simple reader.
	var methods []string
	for all := bytes.Join(pieces, nil); ; {
		r, n, ok := testutil.ParseSimple(all)
		if !ok {
			break
		}
		methods = append(methods, r.Method)
		all = all[n:]
	}

	obs := &observed{}
	var got []byte
	overall := time.Now().Add(10 * time.Second)
	quiet := 300 * time.Millisecond
	if *rewrite {
		quiet = 1500 * time.Millisecond
	}
	buf := make([]byte, 64<<10)
	parsed := 0
	eof := false
	for {
		deadline := overall
		if parsed >= wantResponses && !wantClose {
			deadline = time.Now().Add(quiet)
		}
		_ = c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			eof = !testutil.IsTimeout(err)
		}
		for {
			method := ""
			if parsed < len(methods) {
				method = methods[parsed]
			}
			// A response to HEAD, and a 2xx to CONNECT, has no body.
			resp, k, ok, perr := testutil.ParseSimpleResponse(got, eof, method == "HEAD" || method == "CONNECT")
			if ok && method == "CONNECT" && resp.Status >= 300 {
				resp, k, ok, perr = testutil.ParseSimpleResponse(got, eof, false)
			}
			if perr != nil {
				t.Fatalf("unreadable response from Weir: %v\nreceived: %q", perr, testutil.Clip(got))
			}
			if !ok {
				break
			}
			line := fmt.Sprintf("%d %s", resp.Status, responseBody(resp.Body))
			if resp.Truncated {
				line += " (cut short by the close)"
			}
			if v, _ := resp.Get("Content-Length"); resp.ContentLengths > 1 || len(v) > 1 && v[0] == '0' {
				line += fmt.Sprintf(" (%d Content-Length fields, first %q)", resp.ContentLengths, v)
			}
			obs.responses = append(obs.responses, line)
			got = got[k:]
			parsed++
		}
		if err != nil {
			break
		}
	}
	obs.closed = eof
	if eof && len(got) > 0 {
		t.Fatalf("bytes after the last response: %q", testutil.Clip(got))
	}
	c.Close()

	// Stop Weir, so that everything it was going to forward has been
	// forwarded and its upstream connections are closed, then read the
	// origin's record.
	w.Stop()
	_, _, dialed := w.Srv.Group("app").Peers[0].Pool().Stats()
	if !testutil.Eventually(5*time.Second, func() bool { return int64(rec.Accepted()) >= dialed }) {
		t.Errorf("Weir dialed %d upstream connections, the origin accepted %d", dialed, rec.Accepted())
	}
	if !rec.WaitConnsClosed(5 * time.Second) {
		t.Errorf("an upstream connection is still open after Weir stopped")
	}
	for i, rc := range rec.Conns() {
		for _, r := range rc.Requests {
			obs.origin = append(obs.origin, fmt.Sprintf("[%d] %s", i+1, r.Summary()))
			if r.Strict != nil {
				t.Errorf("the origin received a request Weir's own parser rejects or frames differently (%v): %q", r.Strict, r.Raw)
			}
		}
		if len(rc.Junk) > 0 {
			obs.origin = append(obs.origin, fmt.Sprintf("[%d] junk %s", i+1, testutil.Quote(rc.Junk)))
		}
	}
	return obs
}

// parseAction reads an origin action section: words among close, reset,
// hang, none, per-byte=DURATION and pause=DURATION@BYTES.
func parseAction(text string) (testutil.Action, error) {
	var a testutil.Action
	for _, w := range strings.Fields(text) {
		k, v, _ := strings.Cut(w, "=")
		var err error
		switch k {
		case "close":
			a.Close = true
		case "reset":
			a.Reset = true
		case "hang":
			a.Hang = true
		case "none":
		case "per-byte":
			a.PerByte, err = time.ParseDuration(v)
		case "pause":
			d, at, _ := strings.Cut(v, "@")
			if a.Pause, err = time.ParseDuration(d); err == nil {
				a.PauseAfter, err = strconv.Atoi(at)
			}
		default:
			err = fmt.Errorf("unknown action %q", w)
		}
		if err != nil {
			return a, err
		}
	}
	return a, nil
}

func responseBody(b []byte) string {
	if len(b) > 60 {
		return fmt.Sprintf("len=%d", len(b))
	}
	return testutil.Quote(b)
}

// TestScenarios plays every file in testdata/smuggling and
// testdata/upstream as a subtest (see scenario for the format).
func TestScenarios(t *testing.T) {
	var files []string
	for _, dir := range []string{"smuggling", "upstream"} {
		m, err := filepath.Glob(filepath.Join("testdata", dir, "*.txt"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatal("no scenarios found")
	}
	// Most of a scenario's time is spent waiting (for a close, or for the
	// quiet that shows a connection stays open), so they run many at a
	// time, more than t.Parallel would on a small machine. t.Run may be
	// called from several goroutines at once.
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, f := range files {
		name := strings.TrimSuffix(filepath.ToSlash(f), ".txt")
		name = strings.TrimPrefix(name, "testdata/")
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			t.Run(name, func(t *testing.T) { playScenario(t, f) })
		}()
	}
}

func playScenario(t *testing.T, f string) {
	sc, err := parseScenario(f)
	if err != nil {
		t.Fatal(err)
	}
	obs := runScenario(t, sc)
	if *rewrite {
		sc.set(secResponses, obs.responsesText())
		sc.set(secClose, obs.closeText())
		sc.set(secRequests, obs.originText())
		if err := os.WriteFile(f, []byte(sc.render()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	check := func(name, got string) {
		want, ok := sc.one(name)
		if !ok {
			t.Errorf("%s: no %q section; observed:\n%s(run with -rewrite to record it)", f, name, got)
			return
		}
		if strings.TrimSpace(want) != strings.TrimSpace(got) {
			t.Errorf("%s: %s differ\n--- want\n%s--- got\n%s", f, name, want, got)
		}
	}
	check(secResponses, obs.responsesText())
	check(secClose, obs.closeText())
	check(secRequests, obs.originText())
}
