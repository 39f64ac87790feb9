package tlsfp

import (
	"strings"
	"testing"
)

var (
	vectorCiphers = []uint16{0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035}
	vectorSigAlgs = u16s(0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)
)

// vectorExt returns plausible contents for each extension the test
// vectors use. GREASE extensions are empty.
func vectorExt(typ uint16) ext {
	var d []byte
	switch typ {
	case 0x0000:
		d = sniData("weir.test")
	case 0x0005:
		d = []byte{1, 0, 0, 0, 0}
	case 0x000a:
		d = vec16(u16s(0x4a4a, 0x11ec, 0x001d, 0x0017, 0x0018))
	case 0x000b:
		d = vec8([]byte{0})
	case 0x000d:
		d = vec16(vectorSigAlgs)
	case 0x0010:
		d = alpnData("h2", "http/1.1")
	case 0x0015:
		d = make([]byte, 37)
	case 0x001b:
		d = vec8(u16s(2))
	case 0x002b:
		d = vec8(u16s(0x3a3a, 0x0304, 0x0303))
	case 0x002d:
		d = vec8([]byte{1})
	case 0x0033:
		d = vec16(append(u16s(0x001d, 32), make([]byte, 32)...))
	case 0x4469, 0x44cd:
		d = vec16(vec8([]byte("h2")))
	case 0xfe0d:
		d = []byte{0, 0, 1, 0, 1, 0x42, 0, 0, 0}
	case 0xff01:
		d = []byte{0}
	}
	return ext{typ, d}
}

func vectorHello(t *testing.T, extTypes ...uint16) *ClientHello {
	t.Helper()
	h := hello{version: 0x0303, sessionID: make([]byte, 32)}
	h.ciphers = append([]uint16{0x0a0a}, vectorCiphers...)
	for _, typ := range extTypes {
		h.exts = append(h.exts, vectorExt(typ))
	}
	stream := records(handshake(buildBody(h)), MaxRecordSize)
	ch, err := ParseClientHello(stream)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

type fingerprints struct {
	ja4, ja4r, ja4o, ja4ro, ja3, ja3hash string
}

func checkFingerprints(t *testing.T, h *ClientHello, want fingerprints) {
	t.Helper()
	got := map[string][2]string{
		"JA4":     {h.JA4(TransportTCP), want.ja4},
		"JA4R":    {h.JA4R(TransportTCP), want.ja4r},
		"JA4O":    {h.JA4O(TransportTCP), want.ja4o},
		"JA4RO":   {h.JA4RO(TransportTCP), want.ja4ro},
		"JA3":     {h.JA3(), want.ja3},
		"JA3Hash": {h.JA3Hash(), want.ja3hash},
	}
	for name, g := range got {
		if g[1] != "" && g[0] != g[1] {
			t.Errorf("%s:\n got %s\nwant %s", name, g[0], g[1])
		}
	}
}

// The worked example of the JA4 specification, with GREASE values added
// where a browser puts them.
func TestJA4SpecExample(t *testing.T) {
	h := vectorHello(t, 0x1a1a, 0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d,
		0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015, 0x2a2a)
	checkFingerprints(t, h, fingerprints{
		ja4:   "t13d1516h2_8daaf6152771_e5627efa2ab1",
		ja4r:  "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601",
		ja4o:  "t13d1516h2_acb858a92679_18f69afefd3d",
		ja4ro: "t13d1516h2_1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035_001b,0000,0033,0010,4469,0017,002d,000d,0005,0023,0012,002b,ff01,000b,000a,0015_0403,0804,0401,0503,0805,0501,0806,0601",
	})
	if got := h.JA4(TransportQUIC); got != "q13d1516h2_8daaf6152771_e5627efa2ab1" {
		t.Errorf("JA4 over QUIC = %s", got)
	}
}

// The JA4 specification's example of an extension list without signature
// algorithms: no trailing "_" before hashing.
func TestJA4NoSignatureAlgorithms(t *testing.T) {
	h := &ClientHello{
		Version:      0x0303,
		CipherSuites: vectorCiphers,
		Extensions:   []uint16{0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015},
	}
	got := h.JA4(TransportTCP)
	if !strings.HasSuffix(got, "_6d807ffa2a79") {
		t.Errorf("JA4 = %s, want c part 6d807ffa2a79", got)
	}
	if raw := h.JA4R(TransportTCP); !strings.HasSuffix(raw, "_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01") {
		t.Errorf("JA4R = %s, want no trailing signature list", raw)
	}
}

// A Chrome 143 ClientHello (extension order as sent, GREASE where Chrome
// puts it) and its published JA3 and JA4 fingerprints.
func TestChromeFingerprints(t *testing.T) {
	h := vectorHello(t, 0x5a5a, 0x002d, 0x0033, 0x0010, 0xfe0d, 0x0017, 0x44cd, 0x0000, 0x000b,
		0x000a, 0x002b, 0xff01, 0x0023, 0x0012, 0x0005, 0x000d, 0x001b, 0x6a6a)
	checkFingerprints(t, h, fingerprints{
		ja4:     "t13d1516h2_8daaf6152771_d8a2da3f94cd",
		ja4r:    "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,fe0d,ff01_0403,0804,0401,0503,0805,0501,0806,0601",
		ja4o:    "t13d1516h2_acb858a92679_f96a17c57971",
		ja4ro:   "t13d1516h2_1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035_002d,0033,0010,fe0d,0017,44cd,0000,000b,000a,002b,ff01,0023,0012,0005,000d,001b_0403,0804,0401,0503,0805,0501,0806,0601",
		ja3:     "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0",
		ja3hash: "98487aa16281980e7d1120d399efb6a4",
	})
	if h.ServerName != "weir.test" || len(h.ALPN) != 2 || h.ALPN[0] != "h2" || h.ALPN[1] != "http/1.1" {
		t.Errorf("ServerName %q, ALPN %q", h.ServerName, h.ALPN)
	}
	if len(h.CipherSuites) != 16 || h.CipherSuites[0] != 0x0a0a {
		t.Errorf("GREASE cipher not recorded: %04x", h.CipherSuites)
	}
}

// The example of the JA3 specification: a TLS 1.0 hello.
func TestJA3Example(t *testing.T) {
	h := &ClientHello{
		Version:         769,
		CipherSuites:    []uint16{47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4},
		Extensions:      []uint16{0, 10, 11},
		SupportedGroups: []uint16{23, 24, 25},
		ECPointFormats:  []uint8{0},
	}
	if got, want := h.JA3(), "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"; got != want {
		t.Errorf("JA3 = %s, want %s", got, want)
	}
	if got, want := h.JA3Hash(), "ada70206e40642a3e4461f35503241d5"; got != want {
		t.Errorf("JA3Hash = %s, want %s", got, want)
	}
	if got, want := h.JA4(TransportTCP)[:10], "t10d120300"; got != want {
		t.Errorf("JA4 a = %s, want %s", got, want)
	}
}

func TestJA3EmptyFields(t *testing.T) {
	h := &ClientHello{Version: 0x0303, CipherSuites: []uint16{0x0a0a, 0x1301}, Extensions: []uint16{0xfafa}}
	if got, want := h.JA3(), "771,4865,,,"; got != want {
		t.Errorf("JA3 = %q, want %q", got, want)
	}
}

// The ALPN examples of the JA4 specification, and the edge cases it names.
func TestJA4ALPN(t *testing.T) {
	for _, tc := range []struct {
		alpn []string
		want string
	}{
		{nil, "00"},
		{[]string{""}, "00"},
		{[]string{"h2"}, "h2"},
		{[]string{"http/1.1", "h2"}, "h1"},
		{[]string{"h"}, "hh"},
		{[]string{"\xab"}, "ab"},
		{[]string{"\xab\xcd"}, "ad"},
		{[]string{"\x30\xab"}, "3b"},
		{[]string{"\x30\x31\xab\xcd"}, "3d"},
		{[]string{"\x30\xab\xcd\x31"}, "01"},
		{[]string{"/x"}, "28"},
	} {
		h := &ClientHello{ALPN: tc.alpn}
		if got := h.JA4(TransportTCP)[8:10]; got != tc.want {
			t.Errorf("ALPN %q: got %q, want %q", tc.alpn, got, tc.want)
		}
	}
}

func TestJA4Version(t *testing.T) {
	for _, tc := range []struct {
		legacy uint16
		sv     []uint16
		want   string
	}{
		{0x0303, nil, "12"},
		{0x0303, []uint16{0x0304, 0x0303}, "13"},
		{0x0303, []uint16{0x0303, 0x0304}, "13"}, // the highest, not the first
		{0x0303, []uint16{0xfafa, 0x0303}, "12"}, // GREASE is not a version
		{0x0301, []uint16{0x2a2a}, "10"},         // only GREASE: legacy version
		{0x0302, nil, "11"},
		{0x0300, nil, "s3"},
		{0x0002, nil, "s2"},
		{0xfeff, nil, "d1"},
		{0xfefd, nil, "d2"},
		{0xfefc, nil, "d3"},
		{0x0305, nil, "00"},
	} {
		h := &ClientHello{Version: tc.legacy, SupportedVersions: tc.sv}
		if got := h.JA4(TransportTCP)[1:3]; got != tc.want {
			t.Errorf("legacy %04x, supported %04x: got %q, want %q", tc.legacy, tc.sv, got, tc.want)
		}
	}
}

func TestJA4EmptyLists(t *testing.T) {
	// No ciphers, and only SNI and ALPN as extensions: both hashes are
	// the empty marker, though the counts still include SNI and ALPN.
	h := &ClientHello{
		Version:             0x0303,
		Extensions:          []uint16{0x0000, 0x0010},
		ALPN:                []string{"h2"},
		SignatureAlgorithms: []uint16{0x0403},
	}
	if got, want := h.JA4(TransportTCP), "t12d0002h2_000000000000_000000000000"; got != want {
		t.Errorf("JA4 = %s, want %s", got, want)
	}
	if got, want := (&ClientHello{}).JA4(TransportQUIC), "q00i000000_000000000000_000000000000"; got != want {
		t.Errorf("JA4 of an empty hello = %s, want %s", got, want)
	}
}

func TestJA4Counts(t *testing.T) {
	h := &ClientHello{Version: 0x0303}
	for i := range 120 {
		h.CipherSuites = append(h.CipherSuites, uint16(0x0100+i))
		h.Extensions = append(h.Extensions, uint16(0x0100+i))
	}
	if got := h.JA4(TransportTCP)[:8]; got != "t12i9999" {
		t.Errorf("capped counts: %s", got)
	}
	h = &ClientHello{Version: 0x0303, CipherSuites: []uint16{0x00ff, 0x5600, 0xfe00, 0x1a1a}}
	if got := h.JA4(TransportTCP)[:6]; got != "t12i03" {
		t.Errorf("SCSV and reserved values count, GREASE does not: %s", got)
	}
}

func TestJA4Transport(t *testing.T) {
	h := &ClientHello{Version: 0x0303}
	for _, tr := range []byte{TransportTCP, TransportQUIC, TransportDTLS} {
		if got := h.JA4(tr); got[0] != tr {
			t.Errorf("transport %c: %s", tr, got)
		}
	}
	if got := h.JA4('x'); got != "" {
		t.Errorf("invalid transport: %q, want empty", got)
	}
}

func TestIsGREASE(t *testing.T) {
	n := 0
	for v := range 1 << 16 {
		if IsGREASE(uint16(v)) {
			n++
			if v&0x0f0f != 0x0a0a || v>>8 != v&0xff {
				t.Errorf("%04x is not GREASE", v)
			}
		}
	}
	if n != 16 {
		t.Errorf("%d GREASE values, want 16", n)
	}
}
