package proxyauth

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Bounds on the hashes a users file may hold. Each check of a password
// spends what its hash asks for, so a hash asking too much is refused when
// the file is loaded rather than slowing every request down.
const (
	// MaxBcryptCost is the highest bcrypt cost accepted. Each step doubles
	// the work: cost 10 (the default of HashPassword) takes 50 to 100 ms,
	// cost 15 takes seconds.
	MaxBcryptCost = 15

	// MaxBcryptPassword is the longest password bcrypt can check; it
	// ignores the bytes past it, so longer passwords are refused.
	MaxBcryptPassword = 72

	// MaxArgon2MemoryKiB bounds argon2id's m parameter (256 MiB). Every
	// check of a password allocates that much for its duration.
	MaxArgon2MemoryKiB = 256 << 10

	// MaxArgon2Time bounds argon2id's t parameter (passes over memory).
	MaxArgon2Time = 16

	// MaxArgon2Threads bounds argon2id's p parameter (lanes).
	MaxArgon2Threads = 64

	// MinArgon2SaltLen and MaxArgon2SaltLen bound the decoded salt, in
	// bytes.
	MinArgon2SaltLen = 8
	MaxArgon2SaltLen = 64

	// MinArgon2KeyLen and MaxArgon2KeyLen bound the decoded hash, in bytes.
	MinArgon2KeyLen = 16
	MaxArgon2KeyLen = 64

	// argon2Version is the only argon2 version accepted: 0x13, written
	// "v=19".
	argon2Version = 19
)

// bcryptAlphabet is the base64 alphabet bcrypt encodes salt and hash in.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// credential is one user's parsed hash.
type credential struct {
	bcrypt []byte // the whole bcrypt hash, when it is one

	// argon2id, when bcrypt is nil
	salt, key    []byte
	memory, time uint32
	threads      uint8
}

// verify reports whether pass matches the hash, in time that does not
// depend on where the two differ.
func (c *credential) verify(pass string) bool {
	if c.bcrypt != nil {
		if len(pass) > MaxBcryptPassword {
			return false
		}
		return bcrypt.CompareHashAndPassword(c.bcrypt, []byte(pass)) == nil
	}
	got := argon2.IDKey([]byte(pass), c.salt, c.time, c.memory, c.threads, uint32(len(c.key)))
	return subtle.ConstantTimeCompare(got, c.key) == 1
}

// parseHash reads one hash of the users file. Its errors describe the
// problem without repeating any of the hash.
func parseHash(h string) (credential, error) {
	switch {
	case strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2y$"):
		return parseBcrypt(h)
	case strings.HasPrefix(h, "$argon2id$"):
		return parseArgon2id(h)
	case strings.HasPrefix(h, "$2"):
		return credential{}, errors.New("unsupported bcrypt variant (want $2a$, $2b$ or $2y$)")
	case strings.HasPrefix(h, "$argon2"):
		return credential{}, errors.New("unsupported argon2 variant (want $argon2id$)")
	case h == "":
		return credential{}, errors.New("empty hash")
	}
	return credential{}, errors.New("unsupported hash (want bcrypt $2a$/$2b$/$2y$ or $argon2id$; plain-text passwords are not accepted)")
}

// parseBcrypt checks the layout of a bcrypt hash: "$2x$", two cost
// digits, '$', 22 characters of salt and 31 of hash.
func parseBcrypt(h string) (credential, error) {
	const size = 60
	if len(h) != size {
		return credential{}, errors.New("malformed bcrypt hash: want 60 characters, have " + strconv.Itoa(len(h)))
	}
	if h[6] != '$' || !isDigit(h[4]) || !isDigit(h[5]) {
		return credential{}, errors.New("malformed bcrypt hash: want $2b$NN$ with a two-digit cost")
	}
	cost := int(h[4]-'0')*10 + int(h[5]-'0')
	if cost < bcrypt.MinCost || cost > MaxBcryptCost {
		return credential{}, errors.New("bcrypt cost " + strconv.Itoa(cost) + " out of range " +
			strconv.Itoa(bcrypt.MinCost) + ".." + strconv.Itoa(MaxBcryptCost))
	}
	for i := 7; i < len(h); i++ {
		if strings.IndexByte(bcryptAlphabet, h[i]) < 0 {
			return credential{}, errors.New("malformed bcrypt hash: character outside its base64 alphabet")
		}
	}
	return credential{bcrypt: []byte(h)}, nil
}

// parseArgon2id reads "$argon2id$v=19$m=M,t=T,p=P$salt$hash".
func parseArgon2id(h string) (credential, error) {
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[0] != "" {
		return credential{}, errors.New("malformed argon2id hash: want $argon2id$v=19$m=M,t=T,p=P$salt$hash")
	}
	if parts[2] != "v="+strconv.Itoa(argon2Version) {
		return credential{}, errors.New("unsupported argon2id version (want v=19)")
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return credential{}, errors.New("malformed argon2id parameters: want m=M,t=T,p=P")
	}
	m, errM := phcNumber(params[0], "m=")
	t, errT := phcNumber(params[1], "t=")
	p, errP := phcNumber(params[2], "p=")
	if err := errors.Join(errM, errT, errP); err != nil {
		return credential{}, errors.New("malformed argon2id parameters: want m=M,t=T,p=P")
	}
	switch {
	case t < 1 || t > MaxArgon2Time:
		return credential{}, errors.New("argon2id t=" + strconv.FormatUint(t, 10) + " out of range 1.." + strconv.Itoa(MaxArgon2Time))
	case p < 1 || p > MaxArgon2Threads:
		return credential{}, errors.New("argon2id p=" + strconv.FormatUint(p, 10) + " out of range 1.." + strconv.Itoa(MaxArgon2Threads))
	case m < 8*p || m > MaxArgon2MemoryKiB:
		return credential{}, errors.New("argon2id m=" + strconv.FormatUint(m, 10) + " out of range 8*p.." + strconv.Itoa(MaxArgon2MemoryKiB))
	}
	b64 := base64.RawStdEncoding.Strict()
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return credential{}, errors.New("malformed argon2id salt: want unpadded base64")
	}
	if len(salt) < MinArgon2SaltLen || len(salt) > MaxArgon2SaltLen {
		return credential{}, errors.New("argon2id salt of " + strconv.Itoa(len(salt)) + " bytes, want " +
			strconv.Itoa(MinArgon2SaltLen) + ".." + strconv.Itoa(MaxArgon2SaltLen))
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil {
		return credential{}, errors.New("malformed argon2id hash value: want unpadded base64")
	}
	if len(key) < MinArgon2KeyLen || len(key) > MaxArgon2KeyLen {
		return credential{}, errors.New("argon2id hash value of " + strconv.Itoa(len(key)) + " bytes, want " +
			strconv.Itoa(MinArgon2KeyLen) + ".." + strconv.Itoa(MaxArgon2KeyLen))
	}
	return credential{salt: salt, key: key, memory: uint32(m), time: uint32(t), threads: uint8(p)}, nil
}

// phcNumber reads "<prefix><decimal>" with no sign and no leading zero.
func phcNumber(s, prefix string) (uint64, error) {
	digits, ok := strings.CutPrefix(s, prefix)
	if !ok || digits == "" || len(digits) > 1 && digits[0] == '0' {
		return 0, errors.New("bad number")
	}
	for i := 0; i < len(digits); i++ {
		if !isDigit(digits[i]) {
			return 0, errors.New("bad number")
		}
	}
	return strconv.ParseUint(digits, 10, 32)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// HashPassword returns a bcrypt hash of pass at bcrypt's default cost
// (10), ready for a line of the users file. It refuses an empty password,
// one longer than MaxBcryptPassword bytes (bcrypt would ignore the rest)
// and one holding control characters (a Basic credential cannot carry
// them, so such a password could never be used).
func HashPassword(pass string) (string, error) {
	switch {
	case pass == "":
		return "", errors.New("proxyauth: empty password")
	case len(pass) > MaxBcryptPassword:
		return "", errors.New("proxyauth: password longer than " + strconv.Itoa(MaxBcryptPassword) + " bytes")
	case hasControl(pass):
		return "", errors.New("proxyauth: password holds control characters")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.DefaultCost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

// hasControl reports whether s holds an ASCII control character (C0 or
// DEL).
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
