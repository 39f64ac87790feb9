package proxyauth

import (
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"time"
)

// Reload timing.
const (
	// DefaultWatchInterval is how often Watch looks at the file when
	// given no interval.
	DefaultWatchInterval = 2 * time.Second

	// MinWatchInterval is the shortest interval Watch accepts; shorter
	// ones are raised to it.
	MinWatchInterval = time.Millisecond

	// RacyWindow: a file modified less than this long before it was last
	// read is read again at every poll, even with the same modification
	// time and size, until it is older. File systems keep modification
	// times at a coarse granularity (down to 2 s), so a second write of
	// the same size soon after the first could otherwise go unseen. The
	// content hash then tells whether anything changed.
	RacyWindow = 2 * time.Second
)

// fileState is what was seen of the file when it was last read.
type fileState struct {
	modTime time.Time
	size    int64
	readAt  time.Time
	sum     [sha256.Size]byte // of the content last read, good or bad
}

// readLocked reads the file and, when force is set or its content is not
// the one last read, parses it and swaps the table in. It reports whether
// it parsed. A file that fails to parse leaves the table as it was. The
// caller holds fileMu.
func (u *Users) readLocked(force bool) (bool, error) {
	f, err := os.Open(u.path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return false, err
	}
	sum := sha256.Sum256(data)
	u.file.modTime, u.file.size, u.file.readAt = fi.ModTime(), fi.Size(), time.Now()
	if !force && sum == u.file.sum {
		return false, nil
	}
	u.file.sum = sum
	t, err := parseUsers(u.path, data)
	if err != nil {
		return true, err
	}
	u.table.Store(t)
	u.throttle.prune(t.users, u.now())
	return true, nil
}

// Reload reads the file again now and swaps in its users, forgetting
// every remembered verification. When the file cannot be read or parsed
// it returns the error and the current users stay. It suits a SIGHUP
// handler; Watch does the same on its own when the file changes.
func (u *Users) Reload() error {
	u.fileMu.Lock()
	defer u.fileMu.Unlock()
	_, err := u.readLocked(true)
	return err
}

// poll reads the file when its modification time or size changed, or
// while it is racy (see RacyWindow), and reports whether it parsed.
func (u *Users) poll() (bool, error) {
	u.fileMu.Lock()
	defer u.fileMu.Unlock()
	fi, err := os.Stat(u.path)
	if err != nil {
		return false, err
	}
	racy := !u.file.modTime.Before(u.file.readAt.Add(-RacyWindow))
	if !racy && fi.ModTime().Equal(u.file.modTime) && fi.Size() == u.file.size {
		return false, nil
	}
	return u.readLocked(false)
}

// Watch starts a goroutine that looks at the file every interval (0 means
// DefaultWatchInterval) and swaps in its users when its content changed.
// After each change it calls onReload, when not nil, from that goroutine:
// with nil when the new users are in place, or with the error when the
// file could not be read or parsed, in which case the previous users stay
// and the error is not reported again until it changes. Close stops the
// watcher. Watch fails when a watcher is already running or Close was
// called.
//
// Replace the file atomically (write a new file beside it, then rename it
// over the old one): a file rewritten in place can be read half-written,
// and a half-written file that still parses would be served, with fewer
// users, until the next poll.
func (u *Users) Watch(interval time.Duration, onReload func(error)) error {
	if interval == 0 {
		interval = DefaultWatchInterval
	}
	interval = max(interval, MinWatchInterval)
	u.watchMu.Lock()
	defer u.watchMu.Unlock()
	switch {
	case u.closed:
		return errors.New("proxyauth: Watch after Close")
	case u.stop != nil:
		return errors.New("proxyauth: already watching")
	}
	u.stop, u.done = make(chan struct{}), make(chan struct{})
	go u.watch(interval, onReload, u.stop, u.done)
	return nil
}

func (u *Users) watch(interval time.Duration, onReload func(error), stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	lastErr := ""
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		parsed, err := u.poll()
		switch {
		case err != nil:
			if err.Error() != lastErr {
				lastErr = err.Error()
				if onReload != nil {
					onReload(err)
				}
			}
		case parsed:
			lastErr = ""
			if onReload != nil {
				onReload(nil)
			}
		}
	}
}

// Close stops the watcher, if any, and waits for it to return. The users
// stay usable. Close is safe to call more than once.
func (u *Users) Close() error {
	u.watchMu.Lock()
	if u.closed {
		u.watchMu.Unlock()
		return nil
	}
	u.closed = true
	stop, done := u.stop, u.done
	u.watchMu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	return nil
}
