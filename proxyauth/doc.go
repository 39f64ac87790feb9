// Package proxyauth checks the credentials clients of Weir's forward proxy
// send in Proxy-Authorization, against a users file.
//
// # The users file
//
// One user per line, as name:hash. Lines that are empty or hold only
// spaces are skipped, and so are lines whose first non-space character is
// '#'. Spaces and tabs around a line are ignored, and so is a CR before the
// line feed. For example (alice's password is "alice's secret", bob's is
// "bob's secret"):
//
//	# Weir proxy users
//	alice:$2a$10$rLCgQS20TWC14flLFTdsXOm4t738VK8AXORpK5hCOqPk05P.QUCCK
//	bob:$argon2id$v=19$m=19456,t=2,p=1$d2Vpci1kb2Mtc2FsdC0xNg$21lnLEviDZkZVfKUzfJLqd83Aq9RMaQJBEtqA44Ssrc
//
// The name is everything before the first ':': 1 to [MaxUserLength] bytes
// of UTF-8 without control characters, not starting or ending with a
// space, and unique in the file. The hash is one of:
//
//   - bcrypt, as "$2a$", "$2b$" or "$2y$", a two-digit cost from 04 to
//     [MaxBcryptCost], '$', then 53 characters of salt and hash. Make one
//     with [HashPassword] or "htpasswd -nbB". bcrypt reads only the first
//     72 bytes of a password, so longer passwords are refused rather than
//     cut.
//   - argon2id in the PHC string format:
//     "$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>", salt and
//     hash in unpadded standard base64. The parameters are bounded (see
//     [MaxArgon2MemoryKiB] and its neighbours) because every check of a
//     password spends them.
//
// Plain-text passwords and other schemes (MD5-crypt, SHA-crypt, argon2i,
// argon2d) are refused. A file that breaks a rule is refused as a whole
// with a [*ParseError] "file:line: reason"; no error ever repeats a hash.
//
// # Checking a password
//
// [Users.Check] compares in constant time. bcrypt at cost 10 spends 50 to
// 100 ms of CPU per check, too much to pay on every request of a busy
// proxy, so a successful check is remembered for [VerifiedTTL]: the next
// checks of the same user and password within that time cost one HMAC and
// a map lookup. What is remembered is HMAC-SHA256 of the user name and
// password under a random key made when the file is loaded, never the
// password itself or a plain hash of it. At most [MaxVerified] pairs are
// remembered. A reload of the file forgets them all. Failed checks are
// never remembered.
//
// Failed checks are throttled instead, so that guessing passwords cannot
// take all the CPU: each user name has a budget of [FailureBurst] failed
// checks, refilled by one every [FailureRefill]; names not in the file
// share one such budget. While a name's budget is spent its checks fail at
// once without running the hash, which also means the right password is
// refused for that name until the budget refills (unless it was
// remembered as verified before). Besides, at most half of the CPUs
// (GOMAXPROCS/[HashCPUShare], at least one) run password hashes at a time;
// further checks wait their turn.
//
// A name that is not in the file is checked against the hash of a user
// that is, so the time a check takes does not tell whether a name exists.
//
// # Reloading
//
// [Users.Watch] polls the file and swaps in the new table when its content
// changed; a file that no longer parses keeps the old table and is
// reported to a callback. [Users.Reload] does the same once, for a signal
// handler.
//
// # The header
//
// [ParseProxyAuthorization] reads a "Basic" Proxy-Authorization value and
// [Challenge] builds the Proxy-Authenticate value of a 407 answer.
package proxyauth
