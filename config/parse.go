package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Load reads the configuration file at path and parses it with Parse. A
// file that cannot be read yields the error from the operating system
// (an *fs.PathError) as is; otherwise the result is Parse's.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses and validates a configuration. filename labels error
// messages, and its directory is the base of the relative paths the
// configuration holds (certificate, key and CA files), which Parse reads
// to check them and stores resolved. On success every setting that has a
// default is filled in. On failure the error is an ErrorList holding
// every problem found, sorted by position, and the *Config is nil.
func Parse(filename string, data []byte) (*Config, error) {
	root, err := decodeYAML(data)
	if err != nil {
		var extra *extraDocumentError
		if errors.As(err, &extra) {
			return nil, ErrorList{{File: filename, Line: extra.line, Col: extra.col,
				Msg: "a second YAML document starts here; the configuration must be a single document"}}
		}
		return nil, ErrorList{syntaxError(filename, data, err)}
	}
	d := &decoder{file: filename, dir: filepath.Dir(filename), seen: make(map[Error]bool)}
	if n, msg := checkAliases(root); n != nil {
		d.errorf(n, "%s", msg)
		return nil, d.errs
	}
	cfg := d.config(root)
	if len(d.errs) > 0 {
		sortErrors(d.errs)
		return nil, d.errs
	}
	return cfg, nil
}

// extraDocumentError reports a second document in the stream.
type extraDocumentError struct{ line, col int }

func (e *extraDocumentError) Error() string {
	return fmt.Sprintf("second YAML document at line %d", e.line)
}

// decodeYAML parses data into a node tree and returns the document's
// content node (nil for an empty document). Syntax errors are returned as
// the YAML library produced them, which syntaxError relies on.
func decodeYAML(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, err
	}
	// Further documents are an error, unless they are empty (as after a
	// trailing "---").
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(extra.Content) > 0 && !isNull(extra.Content[0]) {
			return nil, &extraDocumentError{line: extra.Line, col: extra.Column}
		}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0], nil
	}
	return nil, nil
}

// maxExpandedNodes bounds the size of the document once aliases are
// expanded, so that a few lines of anchors cannot make Parse do unbounded
// work ("billion laughs").
const maxExpandedNodes = 1 << 20

// checkAliases rejects aliases that refer to a node containing them, and
// documents whose aliases expand to more than maxExpandedNodes nodes. It
// returns the node at fault and a message, or nil.
func checkAliases(root *yaml.Node) (*yaml.Node, string) {
	const (
		visiting = 1
		done     = 2
	)
	state := make(map[*yaml.Node]int)
	size := make(map[*yaml.Node]int)
	var bad *yaml.Node
	var msg string
	var walk func(n *yaml.Node) int
	walk = func(n *yaml.Node) int {
		if n == nil || bad != nil {
			return 0
		}
		switch state[n] {
		case done:
			return size[n]
		case visiting:
			bad, msg = n, "this node contains an alias to itself"
			return 0
		}
		state[n] = visiting
		total := 1
		if n.Kind == yaml.AliasNode {
			if n.Alias != nil && state[n.Alias] == visiting {
				bad, msg = n, fmt.Sprintf("alias *%s refers to a node that contains it", n.Value)
				return 0
			}
			total += walk(n.Alias)
		}
		for _, c := range n.Content {
			total += walk(c)
			if total > maxExpandedNodes && bad == nil {
				bad, msg = n, fmt.Sprintf("the document expands to more than %d nodes through aliases", maxExpandedNodes)
			}
		}
		state[n] = done
		size[n] = total
		return total
	}
	walk(root)
	return bad, msg
}

// decoder walks the node tree, filling a Config and collecting errors.
type decoder struct {
	file string
	dir  string // the base of relative file paths
	errs ErrorList
	seen map[Error]bool // errors already reported, since aliases may visit a node twice
}

// errorf records an error at node n (line 1, column 1 when n is nil).
func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	e := Error{File: d.file, Line: 1, Col: 1, Msg: fmt.Sprintf(format, args...)}
	if n != nil && n.Line > 0 {
		e.Line, e.Col = n.Line, max(n.Column, 1)
	}
	if d.seen[e] {
		return
	}
	d.seen[e] = true
	d.errs = append(d.errs, &e)
}

// deref follows an alias to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is absent or an explicit null ("key:", "~").
func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// describe names the kind of n for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing"
		case "!!bool":
			return fmt.Sprintf("a boolean (%s)", bare(n.Value))
		case "!!int", "!!float":
			return fmt.Sprintf("a number (%s)", bare(n.Value))
		}
		return fmt.Sprintf("a string (%q)", clip(n.Value))
	}
	return "something else"
}

// clip shortens s for quoting in an error message.
func clip(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// bare shortens s for showing it in an error message without quotes; it
// is quoted after all if it holds control characters, so that a message
// stays on one line.
func bare(s string) string {
	s = clip(strings.TrimSpace(s))
	if strings.ContainsFunc(s, unicode.IsControl) {
		return strconv.Quote(s)
	}
	return s
}

// entry is one key: value pair of a mapping.
type entry struct {
	key  string
	k, v *yaml.Node // v is dereferenced
}

// entries returns the pairs of mapping n in order, with merge keys
// ("<<: *defaults") expanded: keys written in the mapping win over merged
// ones, and earlier merged mappings win over later ones. A key written twice
// is an error. what names the mapping in messages ("in listener").
func (d *decoder) entries(n *yaml.Node, what string) []entry {
	var out, merged []entry
	seen := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, d.mergeEntries(v, what)...)
			continue
		}
		if k.Kind != yaml.ScalarNode || k.Tag == "!!null" {
			d.errorf(k, "keys %s must be strings, not %s", what, describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, "key %q appears twice %s (first at line %d)", clip(k.Value), what, first.Line)
			continue
		}
		seen[k.Value] = k
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" && v.Value == "" {
			// A key without a value: errors about the missing value point
			// at the key rather than at the empty space after it.
			null := *v
			null.Line, null.Column = k.Line, k.Column
			v = &null
		}
		out = append(out, entry{key: k.Value, k: k, v: v})
	}
	for _, e := range merged {
		if seen[e.key] == nil {
			seen[e.key] = e.k
			out = append(out, e)
		}
	}
	return out
}

// mergeEntries returns the entries a merge key brings in: those of one
// mapping, or of a list of mappings where earlier ones win.
func (d *decoder) mergeEntries(v *yaml.Node, what string) []entry {
	switch v.Kind {
	case yaml.MappingNode:
		return d.entries(v, what)
	case yaml.SequenceNode:
		var out []entry
		seen := make(map[string]bool)
		for _, item := range v.Content {
			item = deref(item)
			if item.Kind != yaml.MappingNode {
				d.errorf(item, "<< merges mappings, not %s", describe(item))
				continue
			}
			for _, e := range d.entries(item, what) {
				if !seen[e.key] {
					seen[e.key] = true
					out = append(out, e)
				}
			}
		}
		return out
	}
	d.errorf(v, "<< merges a mapping or a list of mappings, not %s", describe(v))
	return nil
}

// fields is the schema of one mapping: a handler for each valid key.
type fields map[string]func(e entry)

// mapping checks that n is a mapping (null counts as an empty one) and
// calls the handler of each key in file order. name is the key of the
// mapping for type errors ("limits"), what its description for unknown
// keys ("in limits"; "" for the top level). It returns the entries found,
// by key.
func (d *decoder) mapping(n *yaml.Node, name, what string, f fields) map[string]entry {
	found := make(map[string]entry)
	if isNull(n) {
		return found
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "expected a mapping for %s, got %s", name, describe(n))
		return found
	}
	for _, e := range d.entries(n, what) {
		handle := f[e.key]
		if what == "" && strings.HasPrefix(e.key, extensionPrefix) {
			handle = f[extensionPrefix]
		}
		if handle == nil {
			d.unknownKey(e.k, what, f)
			continue
		}
		found[e.key] = e
		handle(e)
	}
	return found
}

// unknownKey reports key k, which is not one of f's.
func (d *decoder) unknownKey(k *yaml.Node, what string, f fields) {
	keys := make([]string, 0, len(f))
	for key := range f {
		if key != extensionPrefix {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	hint := didYouMean(k.Value, keys)
	if hint == "" {
		hint = " (valid keys: " + strings.Join(keys, ", ") + ")"
	}
	if what == "" {
		d.errorf(k, "unknown top-level key %q%s", clip(k.Value), hint)
	} else {
		d.errorf(k, "unknown key %q %s%s", clip(k.Value), what, hint)
	}
}

// list returns the items of sequence n (dereferenced); null is an empty
// list. name is the key for type errors.
func (d *decoder) list(n *yaml.Node, name string) ([]*yaml.Node, bool) {
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "expected a list for %s, got %s", name, describe(n))
		return nil, false
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, item := range n.Content {
		items[i] = deref(item)
	}
	return items, true
}

// scalar checks that n is a scalar with a value. what says what was
// expected ("a string", "an integer").
func (d *decoder) scalar(n *yaml.Node, name, what string) bool {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		d.errorf(n, "missing value for %s: expected %s", name, what)
		return false
	case n.Kind != yaml.ScalarNode:
		d.errorf(n, "expected %s for %s, got %s", what, name, describe(n))
		return false
	}
	return true
}

// str returns the text of scalar n.
func (d *decoder) str(n *yaml.Node, name string) (string, bool) {
	if !d.scalar(n, name, "a string") {
		return "", false
	}
	return n.Value, true
}

// strList accepts one string or a list of strings.
func (d *decoder) strList(n *yaml.Node, name string) (values []string, nodes []*yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []string{n.Value}, []*yaml.Node{n}
	}
	items, _ := d.list(n, name)
	for _, item := range items {
		if s, ok := d.str(item, name); ok {
			values = append(values, s)
			nodes = append(nodes, item)
		}
	}
	return values, nodes
}

var decimalRE = regexp.MustCompile(`^[0-9]+$`)

// integer returns scalar n as a whole number from lo to hi.
func (d *decoder) integer(n *yaml.Node, name string, lo, hi int64) (int64, bool) {
	if !d.scalar(n, name, "a whole number") {
		return 0, false
	}
	s := strings.TrimPrefix(n.Value, "+")
	if rest, neg := strings.CutPrefix(s, "-"); neg && decimalRE.MatchString(rest) {
		return 0, d.outOfRange(n, name, lo, hi)
	}
	if !decimalRE.MatchString(s) {
		d.errorf(n, "expected a whole number for %s, got %s", name, describe(n))
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, d.outOfRange(n, name, lo, hi)
	}
	return v, true
}

// outOfRange reports that n is not within [lo, hi] and returns false.
func (d *decoder) outOfRange(n *yaml.Node, name string, lo, hi int64) bool {
	switch {
	case hi == math.MaxInt64 || hi == math.MaxInt:
		if lo == 0 {
			d.errorf(n, "%s must not be negative, got %s", name, bare(n.Value))
		} else {
			d.errorf(n, "%s must be at least %d, got %s", name, lo, bare(n.Value))
		}
	default:
		d.errorf(n, "%s must be from %d to %d, got %s", name, lo, hi, bare(n.Value))
	}
	return false
}

// intField stores scalar n into *dst if it is within [lo, hi].
func (d *decoder) intField(n *yaml.Node, name string, lo, hi int64, dst *int) bool {
	v, ok := d.integer(n, name, lo, min(hi, math.MaxInt))
	if ok {
		*dst = int(v)
	}
	return ok
}

// sizeUnits maps the units a size may carry, in lower case, to bytes.
var sizeUnits = map[string]int64{
	"b":   1,
	"kb":  1000,
	"mb":  1000 * 1000,
	"gb":  1000 * 1000 * 1000,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
}

var sizeRE = regexp.MustCompile(`^([0-9]+) ?([A-Za-z]+)$`)

// size returns scalar n as a byte count of at least lo: a whole number,
// or one with a unit ("8KiB", "1MB").
func (d *decoder) size(n *yaml.Node, name string, lo int64) (int64, bool) {
	if !d.scalar(n, name, "a size") {
		return 0, false
	}
	s := strings.TrimSpace(n.Value)
	if strings.HasPrefix(s, "-") {
		return 0, d.outOfRange(n, name, lo, math.MaxInt64)
	}
	num, mult := s, int64(1)
	if m := sizeRE.FindStringSubmatch(s); m != nil {
		u, ok := sizeUnits[strings.ToLower(m[2])]
		if !ok {
			d.errorf(n, "invalid size %q for %s: unknown unit %q; use B, KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000)", clip(n.Value), name, m[2])
			return 0, false
		}
		num, mult = m[1], u
	}
	if !decimalRE.MatchString(num) {
		d.errorf(n, "invalid size %q for %s: use a number of bytes or a unit, like 512B, 8KiB or 1MiB", clip(n.Value), name)
		return 0, false
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v > math.MaxInt64/mult || v*mult > math.MaxInt {
		d.errorf(n, "size %q for %s is too large", clip(n.Value), name)
		return 0, false
	}
	v *= mult
	if v < lo {
		return 0, d.outOfRange(n, name, lo, math.MaxInt64)
	}
	return v, true
}

// sizeField stores a size of at least lo into *dst.
func (d *decoder) sizeField(n *yaml.Node, name string, lo int64, dst *int) bool {
	v, ok := d.size(n, name, lo)
	if ok {
		*dst = int(v)
	}
	return ok
}

// duration stores scalar n, in Go syntax, into *dst. Negative durations
// are errors, and so is 0 unless zeroOK.
func (d *decoder) duration(n *yaml.Node, name string, zeroOK bool, dst *time.Duration) bool {
	if !d.scalar(n, name, "a duration") {
		return false
	}
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	switch {
	case err != nil:
		d.errorf(n, "invalid duration %q for %s: use Go syntax like 5s or 1m30s", clip(n.Value), name)
		return false
	case v < 0:
		d.errorf(n, "%s must not be negative, got %s", name, bare(n.Value))
		return false
	case v == 0 && !zeroOK:
		d.errorf(n, "%s must be greater than 0", name)
		return false
	}
	*dst = v
	return true
}

// boolean stores scalar n, true or false, into *dst.
func (d *decoder) boolean(n *yaml.Node, name string, dst *bool) bool {
	if !d.scalar(n, name, "true or false") {
		return false
	}
	v, err := strconv.ParseBool(n.Value)
	if n.Tag != "!!bool" || err != nil {
		d.errorf(n, "expected true or false for %s, got %s", name, describe(n))
		return false
	}
	*dst = v
	return true
}

// enum stores scalar n into *dst if it is one of choices.
func (d *decoder) enum(n *yaml.Node, name string, choices []string, dst *string) bool {
	s, ok := d.str(n, name)
	if !ok {
		return false
	}
	if !slices.Contains(choices, s) {
		hint := didYouMean(s, choices)
		if hint == "" {
			hint = ": use " + orList(choices)
		}
		d.errorf(n, "unknown %s %q%s", name, clip(s), hint)
		return false
	}
	*dst = s
	return true
}

// orList formats choices as `"a", "b" or "c"`.
func orList(choices []string) string {
	q := make([]string, len(choices))
	for i, c := range choices {
		q[i] = strconv.Quote(c)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
