package admin

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/credits"
)

// query reads and checks query parameters; every error names the
// parameter.
type query struct{ v url.Values }

func queryOf(r *http.Request) query { return query{r.URL.Query()} }

func (q query) has(name string) bool { return q.v.Has(name) }

func (q query) str(name string) string { return strings.TrimSpace(q.v.Get(name)) }

// intIn returns an integer parameter in [lo, hi], or def when absent.
func (q query) intIn(name string, def, lo, hi int) (int, error) {
	s := q.str(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badField(name, "must be a whole number from %d to %d", lo, hi)
	}
	return n, nil
}

// boolean returns a true/false parameter (absent: false).
func (q query) boolean(name string) (bool, error) {
	switch strings.ToLower(q.str(name)) {
	case "", "false", "0", "no":
		return false, nil
	case "true", "1", "yes":
		return true, nil
	}
	return false, badField(name, "must be true or false")
}

// time returns an RFC 3339 timestamp or a YYYY-MM-DD date (UTC midnight).
func (q query) time(name string) (time.Time, error) {
	s := q.str(name)
	if s == "" {
		return time.Time{}, nil
	}
	return parseTime(name, s)
}

func parseTime(field, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, badField(field, "must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z")
}

// amount returns a credits parameter, nil when absent.
func (q query) amount(name string) (*credits.Credits, error) {
	s := q.str(name)
	if s == "" {
		return nil, nil
	}
	n, err := credits.Parse([]byte(s))
	if err != nil {
		return nil, badField(name, "%v", err)
	}
	return &n, nil
}

// oneOf returns a parameter that must be one of allowed (or def when
// absent).
func (q query) oneOf(name, def string, allowed ...string) (string, error) {
	s := q.str(name)
	if s == "" {
		return def, nil
	}
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", badField(name, "must be one of %s", strings.Join(allowed, ", "))
}
