package admin

import (
	"errors"
	"maps"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/store"
)

// Bounds on what one request may set.
const (
	maxNameLen      = 200
	maxTags         = 50
	maxTagKeyLen    = 100
	maxTagValueLen  = 500
	maxNamespaceLen = 50
	maxAliasLen     = 100
	maxToolPatterns = 500
	maxToolLen      = 200
	maxIPEntries    = 500
	maxTextLen      = 500 // reasons, memos
)

// checkText trims s and refuses invalid UTF-8, control characters and
// more than max characters.
func checkText(field, s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", badField(field, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return "", badField(field, "must be at most %d characters (got %d)", max, n)
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return "", badField(field, "must not contain control characters")
		}
	}
	return s, nil
}

var namespaceRE = regexp.MustCompile(`^[a-z0-9-]+$`)

// checkNamespace lower-cases a namespace: letters, digits and hyphens, at
// most 50; empty means "default".
func checkNamespace(field, s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "":
		return "default", nil
	case len(s) > maxNamespaceLen:
		return "", badField(field, "must be at most %d characters", maxNamespaceLen)
	case !namespaceRE.MatchString(s):
		return "", badField(field, "may contain only letters, digits and hyphens")
	}
	return s, nil
}

var aliasRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// reservedAliasPrefixes keep aliases apart from key ids and secrets, so
// the resolver never has to guess.
var reservedAliasPrefixes = []string{"key_", "pg_", "adm_", "ak_"}

func checkAlias(field, s string) error {
	switch {
	case s == "":
		return badField(field, "must not be empty")
	case len(s) > maxAliasLen:
		return badField(field, "must be at most %d characters", maxAliasLen)
	case !aliasRE.MatchString(s):
		return badField(field, "may contain only letters, digits, hyphens and underscores")
	}
	lower := strings.ToLower(s)
	for _, p := range reservedAliasPrefixes {
		if strings.HasPrefix(lower, p) {
			return badField(field, "must not start with %q (reserved for key ids and secrets)", p)
		}
	}
	return nil
}

// checkTools validates tool names and patterns ("*" only at the end) and
// drops duplicates.
func checkTools(field string, list []string) ([]string, error) {
	if len(list) > maxToolPatterns {
		return nil, badField(field, "must have at most %d entries", maxToolPatterns)
	}
	out := make([]string, 0, len(list))
	seen := map[string]bool{}
	for i, t := range list {
		t = strings.TrimSpace(t)
		f := field + "[" + strconv.Itoa(i) + "]"
		if len(t) > maxToolLen {
			return nil, badField(f, "must be at most %d characters", maxToolLen)
		}
		if err := gate.ValidToolPattern(t); err != nil {
			return nil, badField(f, "%v", err)
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out, nil
}

// checkIPs parses an IP allowlist: IPv4 and IPv6 addresses and CIDRs.
func checkIPs(field string, list []string) ([]netip.Prefix, error) {
	if len(list) > maxIPEntries {
		return nil, badField(field, "must have at most %d entries", maxIPEntries)
	}
	out := make([]netip.Prefix, 0, len(list))
	for i, e := range list {
		p, err := gate.ParseIPAllowlist([]string{e})
		if err != nil {
			if u := errors.Unwrap(err); u != nil {
				err = u
			}
			return nil, badField(field+"["+strconv.Itoa(i)+"]", "%q is not an IP address or CIDR: %v", truncate(e, 60), err)
		}
		out = append(out, p...)
	}
	return out, nil
}

// mergeTags applies upd to a copy of base: a string sets a tag, null
// removes it (only when allowRemove). The result holds at most maxTags.
func mergeTags(field string, base map[string]string, upd map[string]*string, allowRemove bool) (map[string]string, error) {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range upd {
		f := field + "." + truncate(k, 40)
		if ck, err := checkText(field, k, maxTagKeyLen); err != nil || ck != k || k == "" {
			return nil, badField(field, "tag names must be 1 to %d characters, without surrounding spaces or control characters", maxTagKeyLen)
		}
		if v == nil {
			if !allowRemove {
				return nil, badField(f, "must be a string")
			}
			delete(out, k)
			continue
		}
		val, err := checkText(f, *v, maxTagValueLen)
		if err != nil {
			return nil, err
		}
		out[k] = val
	}
	if len(out) > maxTags {
		return nil, badField(field, "a key may have at most %d tags (would have %d)", maxTags, len(out))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// expiry computes an expiry from expiresIn (seconds from now) or
// expiresAt (RFC 3339); setting both is refused. The zero time means none.
func expiry(path string, in *count, at *string, now time.Time) (time.Time, error) {
	switch {
	case in != nil && at != nil:
		return time.Time{}, badField(joinPath(path, "expiresIn"), "set expiresIn or expiresAt, not both")
	case in != nil:
		if *in <= 0 {
			return time.Time{}, badField(joinPath(path, "expiresIn"), "must be a positive number of seconds")
		}
		if int64(*in) > int64(100*365*24*time.Hour/time.Second) {
			return time.Time{}, badField(joinPath(path, "expiresIn"), "must be at most 100 years")
		}
		return now.Add(time.Duration(*in) * time.Second).UTC(), nil
	case at != nil:
		t, err := parseTime(joinPath(path, "expiresAt"), *at)
		if err != nil {
			return time.Time{}, err
		}
		if !t.After(now) {
			return time.Time{}, badField(joinPath(path, "expiresAt"), "must be in the future")
		}
		return t.UTC(), nil
	}
	return time.Time{}, nil
}

// quotaSpec is a quota in a request. Call limits and credit limits are
// whole numbers; 0 means unlimited.
type quotaSpec struct {
	DailyCallLimit     count          `json:"dailyCallLimit"`
	MonthlyCallLimit   count          `json:"monthlyCallLimit"`
	DailyCreditLimit   credits.Amount `json:"dailyCreditLimit"`
	MonthlyCreditLimit credits.Amount `json:"monthlyCreditLimit"`
}

func (q *quotaSpec) quota() store.Quota {
	return store.Quota{
		DailyCalls: int64(q.DailyCallLimit), MonthlyCalls: int64(q.MonthlyCallLimit),
		DailyCredits: credits.Credits(q.DailyCreditLimit), MonthlyCredits: credits.Credits(q.MonthlyCreditLimit),
	}
}

// keySpec is the configuration of a new key, as POST /keys, bulk create
// and import take it.
type keySpec struct {
	Name            string             `json:"name"`
	Credits         credits.Amount     `json:"credits"`
	AllowedTools    []string           `json:"allowedTools"`
	DeniedTools     []string           `json:"deniedTools"`
	ExpiresIn       *count             `json:"expiresIn"`
	ExpiresAt       *string            `json:"expiresAt"`
	Quota           *quotaSpec         `json:"quota"`
	SpendingLimit   credits.Amount     `json:"spendingLimit"`
	RateLimitPerMin *count             `json:"rateLimitPerMin"`
	Tags            map[string]*string `json:"tags"`
	IPAllowlist     []string           `json:"ipAllowlist"`
	Namespace       string             `json:"namespace"`
	Alias           string             `json:"alias"`
}

// build validates s and returns the key it describes, without id or
// secret. path prefixes field names in errors.
func (s *keySpec) build(path string, now time.Time) (*store.Key, error) {
	f := func(name string) string { return joinPath(path, name) }
	k := &store.Key{SpendingLimit: credits.Credits(s.SpendingLimit)}
	var err error
	if k.Name, err = checkText(f("name"), s.Name, maxNameLen); err != nil {
		return nil, err
	}
	if k.AllowedTools, err = checkTools(f("allowedTools"), s.AllowedTools); err != nil {
		return nil, err
	}
	if k.DeniedTools, err = checkTools(f("deniedTools"), s.DeniedTools); err != nil {
		return nil, err
	}
	if k.ExpiresAt, err = expiry(path, s.ExpiresIn, s.ExpiresAt, now); err != nil {
		return nil, err
	}
	if s.Quota != nil {
		q := s.Quota.quota()
		k.Quota = &q
	}
	if s.RateLimitPerMin != nil {
		n := int64(*s.RateLimitPerMin)
		k.RateLimitPerMin = &n
	}
	if k.Tags, err = mergeTags(f("tags"), nil, s.Tags, false); err != nil {
		return nil, err
	}
	if k.IPAllowlist, err = checkIPs(f("ipAllowlist"), s.IPAllowlist); err != nil {
		return nil, err
	}
	if k.Namespace, err = checkNamespace(f("namespace"), s.Namespace); err != nil {
		return nil, err
	}
	if s.Alias != "" {
		if err := checkAlias(f("alias"), s.Alias); err != nil {
			return nil, err
		}
		k.Alias = s.Alias
	}
	return k, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
