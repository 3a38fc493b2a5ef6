package config

import (
	"fmt"
	"strings"
)

// Level is how serious a Diagnostic is.
type Level string

// Diagnostic levels. An error stops paygate from starting; a warning is
// printed and the gateway starts.
const (
	LevelError   Level = "error"
	LevelWarning Level = "warning"
)

// Diagnostic is one problem found in a configuration.
type Diagnostic struct {
	Level Level `json:"level"`
	// Path is the JSON path of the setting ("port",
	// "toolPricing.search.creditsPerCall", "servers[1].prefix"), or the
	// environment variable a problem came from. Empty for the file as a
	// whole.
	Path string `json:"path"`
	// Message says what is wrong and what is allowed.
	Message string `json:"message"`
	// Line is the line in the config file, when known.
	Line int `json:"line,omitempty"`
}

// String formats d on one line: "error: port: must be … (line 3)".
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(string(d.Level))
	b.WriteString(": ")
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	if d.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", d.Line)
	}
	return b.String()
}

// HasErrors reports whether diags holds at least one error.
func HasErrors(diags []Diagnostic) bool {
	for _, d := range diags {
		if d.Level == LevelError {
			return true
		}
	}
	return false
}

// Count returns the number of errors and warnings in diags.
func Count(diags []Diagnostic) (errs, warnings int) {
	for _, d := range diags {
		if d.Level == LevelError {
			errs++
		} else {
			warnings++
		}
	}
	return errs, warnings
}

// diags collects diagnostics.
type diags []Diagnostic

func (ds *diags) errorf(path, format string, args ...any) {
	*ds = append(*ds, Diagnostic{Level: LevelError, Path: path, Message: fmt.Sprintf(format, args...)})
}

func (ds *diags) warnf(path, format string, args ...any) {
	*ds = append(*ds, Diagnostic{Level: LevelWarning, Path: path, Message: fmt.Sprintf(format, args...)})
}

// suggest returns the candidate closest to s, or "" when none is close
// enough to be a likely typo. Case, '-' and '_' are ignored, so
// "rate_limit" matches "rateLimit" and "--remote_url" matches
// "remote-url"; a unique candidate that starts with s (or that s starts
// with) also counts.
func suggest(s string, candidates []string) string {
	ns := normalizeName(s)
	if ns == "" {
		return ""
	}
	best, bestDist := "", -1
	var prefixed []string
	for _, c := range candidates {
		nc := normalizeName(c)
		if nc == ns {
			return c
		}
		if len(ns) >= 3 && (strings.HasPrefix(nc, ns) || strings.HasPrefix(ns, nc)) {
			prefixed = append(prefixed, c)
		}
		d := levenshtein(ns, nc)
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := 1
	switch {
	case len(ns) >= 10:
		limit = 3
	case len(ns) >= 5:
		limit = 2
	}
	if bestDist >= 0 && bestDist <= limit {
		return best
	}
	if len(prefixed) == 1 {
		return prefixed[0]
	}
	return ""
}

func normalizeName(s string) string {
	s = strings.ToLower(s)
	return strings.NewReplacer("-", "", "_", "", " ", "").Replace(s)
}

// levenshtein is the edit distance between a and b (bytes), counting a
// swap of two neighbours as one edit ("prot" → "port").
func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return 64
	}
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
