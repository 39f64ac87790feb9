package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weirproxy/weir/internal/testutil"
)

// TestCheckCommand: `weir check -c FILE` names each problem as
// FILE:LINE:COL: message on stderr and exits 1, or confirms a valid file
// and exits 0.
func TestCheckCommand(t *testing.T) {
	t.Parallel()
	const head = "listeners:\n  - address: \"127.0.0.1:8080\"\nroutes:\n  - upstream: api\nupstreams:\n  api:\n"
	cases := []struct {
		name, yaml string
		want       []string // expected stderr lines after "FILE:"
	}{
		{"syntax error: tab indentation",
			head + "    peers:\n\t- \"http://127.0.0.1:9001\"\n",
			[]string{`8:1: found character that cannot start any token`}},
		{"unknown key",
			head + "    balancr: p2c\n    peers: [\"http://127.0.0.1:9001\"]\n",
			[]string{`7:5: unknown key "balancr" in upstream "api"; did you mean "balancer"?`}},
		{"bad duration",
			head + "    peers: [\"http://127.0.0.1:9001\"]\n    timeouts:\n      connect: 5 seconds\n",
			[]string{`9:16: invalid duration "5 seconds" for timeouts.connect: use Go syntax like 5s or 1m30s`}},
		{"bad address",
			"listeners:\n  - address: \"127.0.0.1:80800\"\nroutes:\n  - upstream: api\nupstreams:\n  api:\n    peers: [\"http://127.0.0.1:9001\"]\n",
			[]string{`2:14: invalid address "127.0.0.1:80800" for listener: the port must be a number from 1 to 65535, not "80800"`}},
		{"unknown balancer",
			head + "    balancer: fastest\n    peers: [\"http://127.0.0.1:9001\"]\n",
			[]string{`7:15: unknown balancer "fastest": use "round_robin", "weighted_round_robin", "least_conn", "p2c" or "consistent_hash"`}},
		{"route to an undefined upstream",
			"listeners:\n  - address: \"127.0.0.1:8080\"\nroutes:\n  - name: web\n    upstream: apii\nupstreams:\n  api:\n    peers: [\"http://127.0.0.1:9001\"]\n",
			[]string{`5:15: route "web" sends to upstream "apii", which is not defined; did you mean "api"?`}},
		{"two problems, in file order",
			head + "    peers: [\"http://127.0.0.1:9001\"]\n    timeouts:\n      connect: soon\n    balancr: p2c\n",
			[]string{
				`9:16: invalid duration "soon" for timeouts.connect: use Go syntax like 5s or 1m30s`,
				`10:5: unknown key "balancr" in upstream "api"; did you mean "balancer"?`,
			}},
	}
	dir := t.TempDir()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprintf("bad%d.yaml", i))
			if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			stdout, stderr, code := runWeir(t, "check", "-c", file)
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			var want []string
			for _, w := range tc.want {
				want = append(want, file+":"+w)
			}
			if got := strings.TrimSuffix(stderr, "\n"); got != strings.Join(want, "\n") {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
			}
			if stdout != "" {
				t.Errorf("stdout not empty: %q", stdout)
			}
		})
	}
	t.Run("valid file", func(t *testing.T) {
		file := filepath.Join(dir, "good.yaml")
		good := head + "    balancer: p2c\n    peers: [\"http://127.0.0.1:9001\", \"http://127.0.0.1:9002\"]\n    timeouts: {connect: 2s}\n"
		if err := os.WriteFile(file, []byte(good), 0o600); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := runWeir(t, "check", "-c", file)
		if code != 0 || stdout != file+": configuration is valid\n" || stderr != "" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
}

// runWeir runs the weir binary to completion.
func runWeir(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, weirBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("weir %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// TestReverseProxyCommandDrains: `weir reverse-proxy` serves requests; on
// SIGTERM it stops accepting at once, finishes the request in flight, and
// exits 0.
func TestReverseProxyCommandDrains(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var once sync.Once
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = io.WriteString(w, "origin "+r.URL.Path)
	}))
	t.Cleanup(func() { once.Do(func() { close(release) }) })

	proc := startWeirProcess(t, func(addr string) []string {
		return []string{"reverse-proxy", "--from", addr, "--to", o.peer(), "--access-log", "off"}
	})
	addr := proc.Addr

	c := newClient(t)
	if status, body := get(t, c, "http://"+addr+"/hello"); status != 200 || body != "origin /hello" {
		t.Fatalf("GET /hello: %d %q", status, body)
	}

	slow := make(chan string, 1)
	slowClient := newClient(t)
	go func() {
		resp, err := slowClient.Get("http://" + addr + "/slow")
		if err != nil {
			slow <- "error: " + err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- fmt.Sprintf("%d %s", resp.StatusCode, body)
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request never reached the origin")
	}

	termAt := time.Now()
	proc.signal(syscall.SIGTERM)
	waitFor(t, 5*time.Second, "new connections to be refused after SIGTERM", func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		conn.Close()
		return false
	})
	select {
	case <-proc.Done:
		t.Fatalf("weir exited (%v) with a request in flight", proc.Err)
	case got := <-slow:
		t.Fatalf("the in-flight request ended before the origin answered: %s", got)
	default:
	}

	once.Do(func() { close(release) })
	select {
	case got := <-slow:
		if got != "200 origin /slow" {
			t.Fatalf("in-flight request: %s, want 200 origin /slow", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight request did not complete after the origin answered")
	}
	select {
	case <-proc.Done:
		if proc.Err != nil {
			t.Fatalf("weir exited with %v, want exit status 0", proc.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("weir did not exit within 10s of the last request ending (grace period 30s)")
	}
	if d := time.Since(termAt); d > 30*time.Second {
		t.Fatalf("weir took %v to drain, more than its 30s grace period", d)
	}
}

// TestRunCommandReloadsOnSIGHUP: `weir run -c FILE` rereads FILE on
// SIGHUP: a valid change switches traffic, a broken file is reported and
// the running configuration stays.
func TestRunCommandReloadsOnSIGHUP(t *testing.T) {
	t.Parallel()
	a, b := namedOrigin(t, "a"), namedOrigin(t, "b")
	file := filepath.Join(t.TempDir(), "weir.yaml")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf := func(addr string, o *origin) string {
		return fmt.Sprintf("listeners:\n  - address: %q\nroutes:\n  - upstream: app\nupstreams:\n  app:\n    peers: [%q]\nlog:\n  access: \"off\"\n", addr, o.peer())
	}
	proc := startWeirProcess(t, func(addr string) []string {
		write(conf(addr, a))
		return []string{"run", "-c", file}
	})
	addr := proc.Addr
	c := newClient(t)
	url := "http://" + addr + "/"
	if status, body := get(t, c, url); status != 200 || body != "a" {
		t.Fatalf("before reload: %d %q", status, body)
	}

	write(conf(addr, b))
	proc.signal(syscall.SIGHUP)
	waitFor(t, 5*time.Second, "SIGHUP to switch traffic to origin b", func() bool {
		_, body := get(t, c, url)
		return body == "b"
	})

	write(conf(addr, a) + "upstreams_typo: {}\n")
	proc.signal(syscall.SIGHUP)
	waitFor(t, 5*time.Second, "the failed reload to be logged", func() bool {
		return strings.Contains(proc.Stderr.String(), "reload failed")
	})
	if log := proc.Stderr.String(); !strings.Contains(log, "weir.yaml:10:1: unknown top-level key") || !strings.Contains(log, "upstreams_typo") {
		t.Errorf("the reload error does not name the problem:\n%s", log)
	}
	for i := range 5 {
		if status, body := get(t, c, url); status != 200 || body != "b" {
			t.Fatalf("request %d after a failed reload: %d %q, want 200 from b", i, status, body)
		}
	}
	proc.signal(syscall.SIGTERM)
	select {
	case <-proc.Done:
		if proc.Err != nil {
			t.Fatalf("weir run exited with %v after SIGTERM", proc.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("weir run did not exit after SIGTERM")
	}
}

// weirProcess is the weir binary running in the background.
type weirProcess struct{ *testutil.Process }

// startWeirProcess runs weir with the arguments args returns for a free
// loopback address and waits until it listens there (testutil.StartProcess).
func startWeirProcess(t testing.TB, args func(addr string) []string) *weirProcess {
	t.Helper()
	return &weirProcess{testutil.StartProcess(t, func(addr string) []string {
		return append([]string{weirBin}, args(addr)...)
	})}
}

// signal sends sig to the process.
func (p *weirProcess) signal(sig os.Signal) {
	_ = p.Cmd.Process.Signal(sig)
}
