package resolver

import (
	"bufio"
	"bytes"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxHostsFileSize bounds how much of the hosts file is read; lines past
// it are ignored.
const MaxHostsFileSize = 1 << 20

// hostsFile is the hosts file as last read, checked again for changes at
// most every HostsRecheckInterval of the Resolver's clock. Lookups read
// the current table without locking.
type hostsFile struct {
	path string

	table     atomic.Pointer[hostsTable]
	nextCheck atomic.Int64 // Unix nanoseconds of the Resolver clock

	mu      sync.Mutex // held while the file is checked and read
	modTime time.Time
	size    int64
	read    bool
}

// hostsTable maps a canonical name to its addresses, IPv4 ones first.
type hostsTable map[string][]netip.Addr

// lookup returns a copy of the addresses the hosts file lists for name.
func (h *hostsFile) lookup(name string, now time.Time) []netip.Addr {
	if now.UnixNano() >= h.nextCheck.Load() && h.mu.TryLock() {
		h.refresh(now)
		h.mu.Unlock()
	}
	t := h.table.Load()
	if t == nil {
		return nil
	}
	return slices.Clone((*t)[name])
}

// refresh rereads the file when its modification time or size changed.
// A missing or unreadable file empties the table.
func (h *hostsFile) refresh(now time.Time) {
	h.nextCheck.Store(now.Add(HostsRecheckInterval).UnixNano())
	fi, err := os.Stat(h.path)
	if err != nil {
		h.read = false
		h.table.Store(nil)
		return
	}
	if h.read && fi.ModTime().Equal(h.modTime) && fi.Size() == h.size {
		return
	}
	f, err := os.Open(h.path)
	if err != nil {
		h.read = false
		h.table.Store(nil)
		return
	}
	data, _ := io.ReadAll(io.LimitReader(f, MaxHostsFileSize))
	f.Close()
	t := parseHosts(data)
	h.table.Store(&t)
	h.modTime, h.size, h.read = fi.ModTime(), fi.Size(), true
}

// parseHosts reads hosts(5) lines: an address, then names, '#' starting a
// comment. Lines whose address does not parse and names that are not
// valid are skipped.
func parseHosts(data []byte) hostsTable {
	t := make(hostsTable)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		ip, err := netip.ParseAddr(fields[0])
		if err != nil {
			continue
		}
		ip = ip.Unmap()
		for _, n := range fields[1:] {
			name, ok := canonicalName(n)
			if !ok || slices.Contains(t[name], ip) {
				continue
			}
			t[name] = append(t[name], ip)
		}
	}
	for _, addrs := range t {
		slices.SortStableFunc(addrs, func(a, b netip.Addr) int {
			return boolInt(b.Is4()) - boolInt(a.Is4())
		})
	}
	return t
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
