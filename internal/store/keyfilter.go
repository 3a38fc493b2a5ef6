package store

import (
	"slices"
	"strings"
)

// MatchTags reports whether have holds every tag of f.Tags.
func (f *KeyFilter) MatchTags(have map[string]string) bool {
	for k, v := range f.Tags {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// SortPage sorts a listing's hits by cmp, ties broken by key id so pages
// are stable, reversed when f.Desc, and returns the page f.Offset and
// f.Limit select (a sub-slice of hits).
func SortPage[T any](f *KeyFilter, hits []T, cmp func(a, b *T) int, id func(*T) string) []T {
	slices.SortFunc(hits, func(a, b T) int {
		c := cmp(&a, &b)
		if c == 0 {
			c = strings.Compare(id(&a), id(&b))
		}
		if f.Desc {
			return -c
		}
		return c
	})
	total := len(hits)
	lo := min(max(f.Offset, 0), total)
	hi := total
	if f.Limit > 0 {
		hi = min(lo+f.Limit, total)
	}
	return hits[lo:hi]
}
