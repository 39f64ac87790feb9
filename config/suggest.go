package config

import (
	"fmt"
	"strings"
)

// suggest returns the candidate closest to word, or "" when none is close
// enough to be a plausible typo. Closeness is the optimal string alignment
// distance (insertions, deletions, substitutions and transpositions of
// adjacent characters), compared without regard to case; a candidate is
// close when the distance is at most a third of its length, and at least 1.
func suggest(word string, candidates []string) string {
	best, bestDist := "", 0
	w := strings.ToLower(word)
	for _, c := range candidates {
		limit := max(1, len(c)/3)
		// The distance is at least the difference in length; skipping
		// long names also keeps the quadratic comparison cheap.
		if len(c) > maxSuggestLen || abs(len(w)-len(c)) > limit {
			continue
		}
		d := editDistance(w, strings.ToLower(c))
		if d > limit {
			continue
		}
		if best == "" || d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// maxSuggestLen is the longest candidate suggest considers.
const maxSuggestLen = 64

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// didYouMean returns `; did you mean "X"?` for the closest candidate, or
// "" when there is none.
func didYouMean(word string, candidates []string) string {
	if s := suggest(word, candidates); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}

// editDistance is the optimal string alignment distance between a and b,
// counted in bytes.
func editDistance(a, b string) int {
	// d[i][j] is the distance between a[:i] and b[:j].
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
