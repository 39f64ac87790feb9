package resolver

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// MaxResolvConfSize bounds how much of resolv.conf is read.
const MaxResolvConfSize = 64 << 10

// resolvConf is what Weir uses of resolv.conf.
type resolvConf struct {
	servers  []string // "ip:port"
	timeout  time.Duration
	attempts int
}

// readResolvConf reads the "nameserver" lines and the "timeout:" and
// "attempts:" options of a resolv.conf file. A missing or unreadable file
// reads as empty. "search", "domain" and "ndots" are deliberately not
// used: Weir treats every name as fully qualified.
func readResolvConf(path string) resolvConf {
	f, err := os.Open(path)
	if err != nil {
		return resolvConf{}
	}
	defer f.Close()
	data := make([]byte, MaxResolvConfSize)
	n, _ := f.Read(data)
	return parseResolvConf(data[:n])
}

func parseResolvConf(data []byte) resolvConf {
	var rc resolvConf
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if len(rc.servers) >= MaxResolvConfNameservers {
				continue
			}
			// resolv.conf names the address only; the port is always 53.
			if ip, err := netip.ParseAddr(fields[1]); err == nil {
				rc.servers = append(rc.servers, netip.AddrPortFrom(ip, DNSPort).String())
			}
		case "options":
			for _, opt := range fields[1:] {
				name, value, ok := strings.Cut(opt, ":")
				if !ok {
					continue
				}
				n, err := strconv.Atoi(value)
				if err != nil || n < 1 {
					continue
				}
				switch name {
				case "timeout":
					rc.timeout = min(time.Duration(n)*time.Second, MaxResolvConfTimeout)
				case "attempts":
					rc.attempts = min(n, MaxResolvConfAttempts)
				}
			}
		}
	}
	return rc
}
