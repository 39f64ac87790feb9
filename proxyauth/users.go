package proxyauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Limits of the users file and of the checks made against it.
const (
	// MaxFileSize bounds the users file: about 100,000 bcrypt lines.
	MaxFileSize = 8 << 20

	// MaxUserLength bounds a user name, in bytes.
	MaxUserLength = 256

	// MaxPasswordLength bounds a password, in bytes; longer ones fail
	// without being hashed.
	MaxPasswordLength = 1024

	// VerifiedTTL is how long a successful check of a user and password
	// is remembered, so that the next checks skip the hash.
	VerifiedTTL = 5 * time.Minute

	// MaxVerified bounds how many user and password pairs are remembered
	// as verified.
	MaxVerified = 10000

	// FailureBurst is how many failed checks a user name may have before
	// its checks are refused without hashing.
	FailureBurst = 10

	// FailureRefill is how often a user name gets back one failed check
	// of its budget.
	FailureRefill = time.Second

	// HashCPUShare: at most GOMAXPROCS/HashCPUShare password hashes (at
	// least one) run at once.
	HashCPUShare = 2
)

// ParseError is a mistake in a users file, at a line. It never holds any
// part of a hash.
type ParseError struct {
	// File is the file's path as given to Load.
	File string
	// Line is the 1-based line number, or 0 for the file as a whole.
	Line int
	// Reason says what is wrong.
	Reason string
}

// Error reads "file:line: reason", or "file: reason" for the whole file.
func (e *ParseError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Reason
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Reason
}

// table is one version of the users file.
type table struct {
	users    map[string]*credential
	dummy    *credential // checked for names not in the file
	verified verifiedCache
}

// parseUsers reads a users file; name is used in errors.
func parseUsers(name string, data []byte) (*table, error) {
	if len(data) > MaxFileSize {
		return nil, &ParseError{File: name, Reason: "larger than " + strconv.Itoa(MaxFileSize) + " bytes"}
	}
	t := &table{users: make(map[string]*credential)}
	firstLine := make(map[string]int)
	for n := 1; len(data) > 0; n++ {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		text := strings.Trim(string(line), " \t\r")
		if text == "" || text[0] == '#' {
			continue
		}
		fail := func(reason string) error { return &ParseError{File: name, Line: n, Reason: reason} }
		user, hash, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fail("want name:hash")
		}
		if err := checkUserName(user); err != nil {
			return nil, fail(err.Error())
		}
		if first, dup := firstLine[user]; dup {
			return nil, fail(fmt.Sprintf("user %q defined again (first on line %d)", user, first))
		}
		cred, err := parseHash(hash)
		if err != nil {
			return nil, fail(fmt.Sprintf("user %q: %v", user, err))
		}
		firstLine[user] = n
		t.users[user] = &cred
		if t.dummy == nil {
			t.dummy = &cred
		}
	}
	return t, nil
}

// checkUserName applies the rules for names in the users file.
func checkUserName(user string) error {
	switch {
	case user == "":
		return errors.New("empty user name")
	case len(user) > MaxUserLength:
		return errors.New("user name longer than " + strconv.Itoa(MaxUserLength) + " bytes")
	case !utf8.ValidString(user):
		return errors.New("user name is not valid UTF-8")
	case hasControl(user):
		return errors.New("user name holds control characters")
	case user[0] == ' ' || user[len(user)-1] == ' ':
		return errors.New("user name starts or ends with a space")
	}
	return nil
}

// Users is a users file loaded into memory, safe for concurrent use.
// Create it with [Load]; stop a watcher started on it with Close.
type Users struct {
	path string
	now  func() time.Time // the clock of the verified cache and the throttle
	key  [32]byte         // HMAC key of the verified cache
	hash chan struct{}    // a slot per password hash allowed to run

	table    atomic.Pointer[table]
	throttle throttle

	fileMu sync.Mutex // serialises reads of the file
	file   fileState

	watchMu sync.Mutex
	stop    chan struct{} // closed by Close; nil until Watch
	done    chan struct{} // closed when the watcher has returned
	closed  bool
}

// Load reads the users file at path. It fails with a [*ParseError] when
// the file breaks a rule (see the package documentation), or with the
// error of reading it.
func Load(path string) (*Users, error) {
	u := &Users{
		path: path,
		now:  time.Now,
		hash: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/HashCPUShare)),
	}
	u.throttle.buckets = make(map[string]*bucket)
	rand.Read(u.key[:]) // crypto/rand.Read never fails
	u.fileMu.Lock()
	defer u.fileMu.Unlock()
	if _, err := u.readLocked(true); err != nil {
		return nil, err
	}
	return u, nil
}

// Len returns the number of users in the current table.
func (u *Users) Len() int { return len(u.table.Load().users) }

// Check reports whether pass is the password of user. See the package
// documentation for what it remembers and how failures are throttled.
func (u *Users) Check(user, pass string) bool {
	t := u.table.Load()
	if t.dummy == nil || len(user) > MaxUserLength || len(pass) > MaxPasswordLength {
		return false
	}
	now := u.now()
	mac := u.mac(user, pass)
	if t.verified.has(mac, now) {
		return true
	}
	cred, known := t.users[user]
	bucketKey := user
	if !known {
		cred, bucketKey = t.dummy, ""
	}
	if !u.throttle.take(bucketKey, now) {
		return false
	}
	u.hash <- struct{}{}
	ok := cred.verify(pass)
	<-u.hash
	if !ok || !known {
		return false
	}
	u.throttle.refund(bucketKey, now)
	t.verified.add(mac, now.Add(VerifiedTTL), now)
	return true
}

// mac keys the verified cache: HMAC-SHA256 of the user name's length,
// the name and the password.
func (u *Users) mac(user, pass string) [sha256.Size]byte {
	m := hmac.New(sha256.New, u.key[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(user)))
	m.Write(n[:])
	io.WriteString(m, user)
	io.WriteString(m, pass)
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	return sum
}

// verifiedCache remembers user and password pairs that passed a check,
// by their HMAC, until an expiry time.
type verifiedCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]time.Time
}

func (c *verifiedCache) has(mac [sha256.Size]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.m[mac]
	if ok && !now.Before(exp) {
		delete(c.m, mac)
		return false
	}
	return ok
}

func (c *verifiedCache) add(mac [sha256.Size]byte, expires, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[[sha256.Size]byte]time.Time)
	}
	if len(c.m) >= MaxVerified {
		for k, exp := range c.m {
			if !now.Before(exp) {
				delete(c.m, k)
			}
		}
		// Still full: drop one pair, whichever the map yields first.
		for k := range c.m {
			if len(c.m) < MaxVerified {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[mac] = expires
}

// throttle holds a budget of failed checks per user name: a token bucket
// of FailureBurst tokens refilled one per FailureRefill. A name without a
// bucket has a full budget; buckets that have refilled are dropped on the
// next success and on reload. As names not in the file share the key "",
// the map holds at most one bucket per user of the file, plus one.
type throttle struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens int
	since  time.Time // when the last token was counted in
}

// fill brings b's tokens up to date at now and reports whether it is full.
func (b *bucket) fill(now time.Time) bool {
	if gained := int(now.Sub(b.since) / FailureRefill); gained > 0 {
		b.tokens = min(FailureBurst, b.tokens+gained)
		b.since = b.since.Add(time.Duration(gained) * FailureRefill)
	}
	if now.Before(b.since) { // the clock went back
		b.since = now
	}
	return b.tokens >= FailureBurst
}

// take spends one token of key's budget, or reports that none is left.
func (t *throttle) take(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buckets[key]
	if b == nil {
		b = &bucket{tokens: FailureBurst, since: now}
		t.buckets[key] = b
	} else {
		b.fill(now)
	}
	if b.tokens == 0 {
		return false
	}
	b.tokens--
	return true
}

// refund gives back the token a successful check took.
func (t *throttle) refund(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.buckets[key]; b != nil {
		b.tokens = min(FailureBurst, b.tokens+1)
		if b.fill(now) {
			delete(t.buckets, key)
		}
	}
}

// prune drops full buckets and those of names no longer in users.
func (t *throttle) prune(users map[string]*credential, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for key, b := range t.buckets {
		if _, ok := users[key]; b.fill(now) || key != "" && !ok {
			delete(t.buckets, key)
		}
	}
}
