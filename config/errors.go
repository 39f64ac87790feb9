package config

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is one problem in a configuration file, at the line and column
// (both counting from 1, columns in characters) of the YAML node at fault.
type Error struct {
	File string
	Line int // 0 when the problem has no position
	Col  int
	Msg  string
}

// Error formats the problem as "FILE:LINE:COL: MSG", or "FILE: MSG" when
// it has no position.
func (e *Error) Error() string {
	if e.Line <= 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// ErrorList is every problem found in one configuration file, sorted by
// position. Parse and Load return it (as an error) whenever the
// configuration is not valid; it is never empty then.
type ErrorList []*Error

// Error returns the problems one per line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the problems, so that errors.As can find an *Error.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// sortErrors orders errors by position, keeping the order of discovery
// among errors at the same position.
func sortErrors(l ErrorList) {
	slices.SortStableFunc(l, func(a, b *Error) int {
		if c := cmp.Compare(a.Line, b.Line); c != 0 {
			return c
		}
		return cmp.Compare(a.Col, b.Col)
	})
}

// The YAML library reports syntax errors as "yaml: line N: problem", where
// N is sometimes the line of the construct being parsed rather than of the
// problem, sometimes counted from 0, and missing altogether on the first
// line. It never reports a column.
var yamlErrorRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

// maxLocateBytes bounds the input size for which syntaxError searches for
// the exact position of a syntax error, since the search parses the input
// about a hundred times.
const maxLocateBytes = 128 << 10

// syntaxError turns an error from the YAML library into an *Error.
func syntaxError(file string, data []byte, err error) *Error {
	full := err.Error()
	msg := full
	line := 0
	if m := yamlErrorRE.FindStringSubmatch(full); m != nil {
		msg = full[len(m[0]):]
		line, _ = strconv.Atoi(m[1])
	}
	e := &Error{File: file, Line: max(line, 1), Col: 1, Msg: msg}
	if len(data) <= maxLocateBytes {
		e.Line, e.Col = locate(data, full, line)
		e.Col = aliasStart(data, e.Line, e.Col, msg)
	}
	return e
}

var unknownAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// aliasStart moves the column of an "unknown anchor" error from the end of
// the alias to its '*'.
func aliasStart(data []byte, line, col int, msg string) int {
	m := unknownAnchorRE.FindStringSubmatch(msg)
	if m == nil {
		return col
	}
	ends := lineEnds(data)
	start := 0
	if line > 1 {
		start = ends[line-2]
	}
	text := []rune(string(data[start:ends[line-1]]))
	alias := []rune("*" + m[1])
	for c := min(col, len(text)) - len(alias); c >= 0; c-- {
		if string(text[c:c+len(alias)]) == string(alias) {
			return c + 1
		}
	}
	return col
}

// locate finds the position of the syntax error that makes the YAML
// library fail on data with the error text want; hint is the line number
// the library reported.
//
// The error lies where prefixes of data start to fail with exactly the same
// text: the search looks for the shortest such prefix, first among those
// ending at a line end, then character by character within the line found.
// A prefix may fail only because it was cut short, inside a flow
// collection or a quoted string; to tell such failures apart, a prefix
// counts only if it still fails the same way when followed by text that
// would close those constructs (as long as that text does not change the
// error on the whole of data). Both searches are binary, as failing is
// monotone in the prefix length: the library parses in a single forward
// pass and stops at the first error.
func locate(data []byte, want string, hint int) (line, col int) {
	errText := func(b []byte) string {
		if _, err := decodeYAML(b); err != nil {
			return err.Error()
		}
		return ""
	}
	var tails []string
	for _, t := range []string{"\n]", "\n}", "\n\"", "\n'"} {
		if errText(append(data[:len(data):len(data)], t...)) == want {
			tails = append(tails, t)
		}
	}
	fails := func(n int) bool {
		p := data[:n:n]
		if errText(p) != want {
			return false
		}
		for _, t := range tails {
			if errText(append(p, t...)) != want {
				return false
			}
		}
		return true
	}

	// The library's line is that of the error or of a construct enclosing
	// it, sometimes counted from 0: the error is not above the line before.
	ends := lineEnds(data)
	first := min(max(hint-1, 1), len(ends)) - 1 // index into ends
	l := first + sort.Search(len(ends)-first, func(i int) bool {
		return fails(ends[first+i])
	})
	if l == len(ends) {
		// Cannot happen, as the whole input fails by construction.
		l = len(ends) - 1
	}
	start := 0
	if l > 0 {
		start = ends[l-1]
	}
	// offs[i] is the offset just past the (i+1)th character of the line.
	var offs []int
	for off := start; off < ends[l]; {
		_, size := utf8.DecodeRune(data[off:])
		off += size
		offs = append(offs, off)
	}
	c := sort.Search(len(offs), func(i int) bool { return fails(offs[i]) })
	// A column past the line's last character points just after it.
	width := utf8.RuneCount(trimBreak(data[start:ends[l]]))
	return l + 1, min(c+1, width+1)
}

// lineEnds returns the offset just past each line of data, counting line
// breaks as YAML does: LF, CR LF, CR, NEL, LS and PS. The last line ends at
// len(data) (there is always at least one line).
func lineEnds(data []byte) []int {
	var ends []int
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		i += size
		switch r {
		case '\r':
			if i < len(data) && data[i] == '\n' {
				i++
			}
			ends = append(ends, i)
		case '\n', '\u0085', '\u2028', '\u2029':
			ends = append(ends, i)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	return ends
}

// trimBreak removes the line break that ends line, if any.
func trimBreak(line []byte) []byte {
	for _, br := range []string{"\r\n", "\n", "\r", "\u0085", "\u2028", "\u2029"} {
		if s, ok := strings.CutSuffix(string(line), br); ok {
			return []byte(s)
		}
	}
	return line
}
