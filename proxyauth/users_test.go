package proxyauth

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// The example of the package documentation.
const (
	docAlice = "$2a$10$rLCgQS20TWC14flLFTdsXOm4t738VK8AXORpK5hCOqPk05P.QUCCK"
	docBob   = "$argon2id$v=19$m=19456,t=2,p=1$d2Vpci1kb2Mtc2FsdC0xNg$21lnLEviDZkZVfKUzfJLqd83Aq9RMaQJBEtqA44Ssrc"
)

// bcryptHash hashes pass at the lowest cost, to keep tests fast.
func bcryptHash(t testing.TB, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// argon2Hash hashes pass with small argon2id parameters.
func argon2Hash(pass string) string {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(pass), salt, 1, 64, 1, 32)
	return "$argon2id$v=19$m=64,t=1,p=1$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key)
}

// writeFile replaces the file at path atomically, as the documentation
// asks, so a watcher never reads it half-written.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func load(t testing.TB, content string) (*Users, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, content)
	u, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u, path
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func withClock(u *Users) *fakeClock {
	c := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	u.now = c.Now
	return c
}

func TestLoadAndCheck(t *testing.T) {
	b := bcryptHash(t, "b-pass")
	content := "# users\r\n" +
		"\n" +
		"   \t\n" +
		"alice:" + bcryptHash(t, "alice's secret") + "\r\n" +
		"  bob:" + argon2Hash("bob's secret") + "  \n" +
		"carol:" + b + "\n" +
		"dave:" + strings.Replace(b, "$2a$", "$2b$", 1) + "\n" +
		"erin:" + strings.Replace(b, "$2a$", "$2y$", 1) + "\n" +
		"frank:" + argon2Hash("f-pass") + "\n" +
		"  # indented comment\n" +
		"grace hopper:" + argon2Hash("g:pass") + "\n" +
		"zoë:" + argon2Hash("") // no final newline
	u, _ := load(t, content)
	if u.Len() != 8 {
		t.Fatalf("Len() = %d, want 8", u.Len())
	}
	good := []struct{ user, pass string }{
		{"alice", "alice's secret"}, {"bob", "bob's secret"}, {"carol", "b-pass"}, {"dave", "b-pass"},
		{"erin", "b-pass"}, {"frank", "f-pass"}, {"grace hopper", "g:pass"}, {"zoë", ""},
	}
	for _, c := range good {
		if !u.Check(c.user, c.pass) {
			t.Errorf("Check(%q, %q) = false", c.user, c.pass)
		}
	}
	bad := []struct{ user, pass string }{
		{"alice", "bob's secret"}, {"bob", "alice's secret"}, {"carol", "b-pasS"}, {"carol", ""},
		{"Carol", "b-pass"}, {"frank", "f-pass "}, {"nobody", "b-pass"}, {"", ""}, {"zoë", "x"},
	}
	for _, c := range bad {
		if u.Check(c.user, c.pass) {
			t.Errorf("Check(%q, %q) = true", c.user, c.pass)
		}
	}
}

func TestDocExample(t *testing.T) {
	u, _ := load(t, "alice:"+docAlice+"\nbob:"+docBob+"\n")
	if !u.Check("alice", "alice's secret") || !u.Check("bob", "bob's secret") {
		t.Error("the example of the documentation does not check")
	}
}

func TestArgon2ReferenceVector(t *testing.T) {
	// From the argon2 reference implementation's tests.
	u, _ := load(t, "ref:$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n")
	if !u.Check("ref", "password") {
		t.Error("reference argon2id hash does not verify")
	}
}

func TestParseErrors(t *testing.T) {
	b := bcryptHash(t, "pass")
	a := argon2Hash("pass")
	saltKey := a[strings.LastIndex(a[:strings.LastIndex(a, "$")], "$"):]
	long := strings.Repeat("x", MaxUserLength+1)
	cases := []struct {
		line, want string
	}{
		{"alice", "want name:hash"},
		{":" + b, "empty user name"},
		{"alice :" + b, "starts or ends with a space"},
		{"al\x01ice:" + b, "control characters"},
		{"al\xffice:" + b, "not valid UTF-8"},
		{long + ":" + b, "longer than"},
		{"alice:secret", "plain-text passwords are not accepted"},
		{"alice:", "empty hash"},
		{"alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "unsupported hash"},
		{"alice:$1$saltsalt$abcdefghijklmnopqrstuv", "unsupported hash"},
		{"alice:" + strings.Replace(b, "$2a$", "$2x$", 1), "unsupported bcrypt variant"},
		{"alice:" + b[:59], "want 60 characters"},
		{"alice:" + b + "x", "want 60 characters"},
		{"alice:" + b[:4] + "03" + b[6:], "cost 3 out of range"},
		{"alice:" + b[:4] + "31" + b[6:], "cost 31 out of range"},
		{"alice:" + b[:4] + "1x" + b[6:], "two-digit cost"},
		{"alice:" + b[:20] + "!" + b[21:], "outside its base64 alphabet"},
		{"alice:" + strings.Replace(a, "argon2id", "argon2i", 1), "unsupported argon2 variant"},
		{"alice:" + strings.Replace(a, "v=19", "v=16", 1), "version"},
		{"alice:" + strings.Replace(a, "m=64,", "m=999999999,", 1), "m=999999999 out of range"},
		{"alice:" + strings.Replace(a, "m=64,", "m=4,", 1), "m=4 out of range"},
		{"alice:" + strings.Replace(a, "t=1,", "t=0,", 1), "t=0 out of range"},
		{"alice:" + strings.Replace(a, "p=1", "p=100", 1), "p=100 out of range"},
		{"alice:" + strings.Replace(a, "m=64,t=1", "t=1,m=64", 1), "want m=M,t=T,p=P"},
		{"alice:" + strings.Replace(a, "m=64", "m=064", 1), "want m=M,t=T,p=P"},
		{"alice:" + strings.Replace(a, "m=64", "m=+64", 1), "want m=M,t=T,p=P"},
		{"alice:" + strings.Replace(a, "m=64", "m=99999999999", 1), "want m=M,t=T,p=P"},
		{"alice:" + strings.Replace(a, saltKey, "$c2FsdA$"+saltKey[len("$MDEyMzQ1Njc4OWFiY2RlZg$"):], 1), "salt of 4 bytes"},
		{"alice:" + strings.Replace(a, saltKey, "$MDEyMzQ1Njc4OWFiY2RlZg==$"+saltKey[len("$MDEyMzQ1Njc4OWFiY2RlZg$"):], 1), "malformed argon2id salt"},
		{"alice:" + a[:len(a)-10], "malformed argon2id hash value"},
		{"alice:" + a + "$extra", "malformed argon2id hash"},
		{"alice:" + strings.Replace(a, saltKey, "$MDEyMzQ1Njc4OWFiY2RlZg$c2hvcnQ", 1), "hash value of 5 bytes"},
	}
	for _, c := range cases {
		content := "# header\n\n" + "ok:" + b + "\n" + c.line + "\n" + "later:" + b + "\n"
		_, err := parseUsers("users.txt", []byte(content))
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%q: error %v, want a *ParseError", c.line, err)
			continue
		}
		msg := err.Error()
		if pe.Line != 4 || !strings.HasPrefix(msg, "users.txt:4: ") || !strings.Contains(msg, c.want) {
			t.Errorf("%q: error %q, want users.txt:4: ...%s...", c.line, msg, c.want)
		}
		if _, hash, ok := strings.Cut(c.line, ":"); ok && len(hash) >= 8 && strings.Contains(msg, hash[7:]) {
			t.Errorf("%q: error %q repeats the hash", c.line, msg)
		}
	}

	_, err := parseUsers("users.txt", []byte("alice:"+b+"\nbob:"+b+"\nalice:"+a+"\n"))
	if err == nil || err.Error() != `users.txt:3: user "alice" defined again (first on line 1)` {
		t.Errorf("duplicate user: %v", err)
	}
	_, err = parseUsers("users.txt", make([]byte, MaxFileSize+1))
	if err == nil || !strings.HasPrefix(err.Error(), "users.txt: larger than") {
		t.Errorf("large file: %v", err)
	}

	// Load reports the same errors, and I/O errors.
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, "alice\n")
	if _, err := Load(path); err == nil || err.Error() != path+":1: want name:hash" {
		t.Errorf("Load: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func TestEmptyFile(t *testing.T) {
	u, _ := load(t, "# nobody yet\n")
	if u.Len() != 0 || u.Check("", "") || u.Check("alice", "x") {
		t.Error("an empty file lets someone in")
	}
}

func TestBcryptLongPassword(t *testing.T) {
	long := strings.Repeat("p", MaxBcryptPassword)
	u, _ := load(t, "alice:"+bcryptHash(t, long)+"\nbob:"+argon2Hash(long+"q")+"\n")
	if !u.Check("alice", long) {
		t.Error("72-byte password refused")
	}
	// bcrypt would ignore the 73rd byte; Weir refuses the password.
	if u.Check("alice", long+"q") {
		t.Error("73-byte password accepted by bcrypt")
	}
	if !u.Check("bob", long+"q") {
		t.Error("argon2id refused a 73-byte password")
	}
	if u.Check("bob", strings.Repeat("p", MaxPasswordLength+1)) {
		t.Error("overlong password accepted")
	}
}

func TestVerifiedCache(t *testing.T) {
	u, _ := load(t, "alice:"+bcryptHash(t, "right")+"\n")
	clock := withClock(u)

	if !u.Check("alice", "right") {
		t.Fatal("right password refused")
	}
	tab := u.table.Load()
	if n := len(tab.verified.m); n != 1 {
		t.Fatalf("%d verifications remembered, want 1", n)
	}
	// Swap the stored hash behind the cache's back: a remembered pair no
	// longer runs the hash.
	*tab.users["alice"] = credential{bcrypt: []byte(bcryptHash(t, "other"))}
	if !u.Check("alice", "right") {
		t.Error("remembered verification not used")
	}
	// Failures are not remembered.
	if u.Check("alice", "wrong") || len(tab.verified.m) != 1 {
		t.Error("a failed check was remembered")
	}
	clock.Advance(VerifiedTTL - time.Second)
	if !u.Check("alice", "right") {
		t.Error("verification forgotten early")
	}
	clock.Advance(time.Second)
	if u.Check("alice", "right") {
		t.Error("verification remembered past VerifiedTTL")
	}

	// A reload forgets every verification.
	if !u.Check("alice", "other") {
		t.Fatal("other password refused")
	}
	if err := u.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := len(u.table.Load().verified.m); n != 0 {
		t.Errorf("%d verifications survived a reload", n)
	}
	if !u.Check("alice", "right") {
		t.Error("password from the file refused after reload")
	}
}

func TestVerifiedCacheBounded(t *testing.T) {
	var c verifiedCache
	now := time.Now()
	for i := range MaxVerified + 10 {
		var mac [32]byte
		mac[0], mac[1] = byte(i), byte(i>>8)
		c.add(mac, now.Add(time.Minute), now)
	}
	if len(c.m) != MaxVerified {
		t.Errorf("cache holds %d pairs, want %d", len(c.m), MaxVerified)
	}
}

func TestMACSeparatesUserAndPassword(t *testing.T) {
	u, _ := load(t, "")
	if u.mac("ab", "c") == u.mac("a", "bc") {
		t.Error("(ab, c) and (a, bc) share a key")
	}
}

func TestFailureThrottle(t *testing.T) {
	u, _ := load(t, "alice:"+bcryptHash(t, "right")+"\nbob:"+bcryptHash(t, "bob")+"\n")
	clock := withClock(u)

	for range FailureBurst {
		if u.Check("alice", "guess") {
			t.Fatal("guess accepted")
		}
	}
	// The budget is spent: even the right password is refused now...
	if u.Check("alice", "right") {
		t.Error("check ran with the failure budget spent")
	}
	// ...but other users are not affected.
	if !u.Check("bob", "bob") {
		t.Error("bob throttled for alice's failures")
	}
	clock.Advance(FailureRefill)
	if !u.Check("alice", "right") {
		t.Error("budget not refilled")
	}
	// A success gives its token back; budgets that have refilled are
	// dropped on reload.
	clock.Advance(FailureBurst * FailureRefill)
	if err := u.Reload(); err != nil {
		t.Fatal(err)
	}
	u.throttle.mu.Lock()
	n := len(u.throttle.buckets)
	u.throttle.mu.Unlock()
	if n != 0 {
		t.Errorf("%d budgets stored, want 0", n)
	}

	// Names not in the file share one budget.
	for i := range FailureBurst {
		u.Check("ghost"+string(rune('a'+i)), "guess")
	}
	u.throttle.mu.Lock()
	_, shared := u.throttle.buckets[""]
	n = len(u.throttle.buckets)
	u.throttle.mu.Unlock()
	if !shared || n != 1 {
		t.Errorf("unknown names: shared budget %v, %d budgets", shared, n)
	}
	if !u.throttle.take("alice", clock.Now()) || u.throttle.take("", clock.Now()) {
		t.Error("shared budget of unknown names not spent, or alice's spent")
	}
}

func TestConcurrentChecksAndReloads(t *testing.T) {
	// Wrong passwords go to bob only: they spend his failure budget,
	// which would refuse alice's right password too if they were hers.
	content := func() string { return "alice:" + bcryptHash(t, "right") + "\nbob:" + bcryptHash(t, "bob") + "\n" }
	u, path := load(t, content())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 20 {
				if !u.Check("alice", "right") {
					t.Error("right password refused")
					return
				}
				if i%2 == 0 && u.Check("bob", "wrong") {
					t.Error("wrong password accepted")
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 10 {
			writeFile(t, path, content())
			if err := u.Reload(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost([]byte(h)); err != nil || cost != bcrypt.DefaultCost {
		t.Errorf("cost %d, %v", cost, err)
	}
	u, _ := load(t, "alice:"+h+"\n")
	if !u.Check("alice", "s3cret") {
		t.Error("hash from HashPassword does not check")
	}
	for _, bad := range []string{"", strings.Repeat("x", MaxBcryptPassword+1), "tab\there", "del\x7f"} {
		if _, err := HashPassword(bad); err == nil {
			t.Errorf("HashPassword(%q) accepted", bad)
		}
	}
}

// waitReport waits for the watcher's next report.
func waitReport(t *testing.T, reports <-chan error) error {
	t.Helper()
	select {
	case err := <-reports:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no reload reported")
		return nil
	}
}

func TestWatch(t *testing.T) {
	first := bcryptHash(t, "first")
	u, path := load(t, "alice:"+first+"\n")
	reports := make(chan error, 10)
	if err := u.Watch(time.Millisecond, func(err error) { reports <- err }); err != nil {
		t.Fatal(err)
	}
	if err := u.Watch(time.Millisecond, nil); err == nil {
		t.Error("second Watch accepted")
	}

	// Same size, same second: only the content differs.
	second := bcryptHash(t, "second")
	writeFile(t, path, "alice:"+second+"\n")
	if err := waitReport(t, reports); err != nil {
		t.Fatal(err)
	}
	if !u.Check("alice", "second") || u.Check("alice", "first") {
		t.Fatal("new users not in place after reload")
	}

	// A broken file keeps the old users and is reported once.
	writeFile(t, path, "alice:"+second+"\nbob:plain\n")
	err := waitReport(t, reports)
	if err == nil || err.Error() != path+`:2: user "bob": unsupported hash (want bcrypt $2a$/$2b$/$2y$ or $argon2id$; plain-text passwords are not accepted)` {
		t.Fatalf("broken file reported as %v", err)
	}
	if !u.Check("alice", "second") || u.Len() != 1 {
		t.Error("old users lost to a broken file")
	}

	// A missing file is an error too; the users stay.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := waitReport(t, reports); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file reported as %v", err)
	}
	if !u.Check("alice", "second") {
		t.Error("users lost with the file")
	}

	// Fixed: the new users come in.
	writeFile(t, path, "alice:"+second+"\nbob:"+argon2Hash("bob")+"\n")
	if err := waitReport(t, reports); err != nil {
		t.Fatal(err)
	}
	if !u.Check("bob", "bob") {
		t.Error("bob missing after the fix")
	}

	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if err := u.Watch(time.Millisecond, nil); err == nil {
		t.Error("Watch after Close accepted")
	}
	// Nothing is reported once closed.
	writeFile(t, path, "garbage\n")
	select {
	case err := <-reports:
		t.Errorf("report after Close: %v", err)
	default:
	}
}

func TestReloadKeepsUsersOnError(t *testing.T) {
	u, path := load(t, "alice:"+argon2Hash("a")+"\n")
	writeFile(t, path, "alice\n")
	if err := u.Reload(); err == nil || !strings.HasPrefix(err.Error(), path+":1: ") {
		t.Errorf("Reload of a broken file: %v", err)
	}
	if !u.Check("alice", "a") {
		t.Error("users lost to a broken file")
	}
}
