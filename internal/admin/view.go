package admin

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/store"
)

// timeLayout is how times are rendered: UTC, milliseconds, like
// paygate-mcp's ISO strings.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// optTime renders a time that may be unset (JSON null).
func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := fmtTime(t)
	return &s
}

// Key statuses, as listings and filters name them.
const (
	statusActive    = "active"
	statusSuspended = "suspended"
	statusExpired   = "expired"
	statusRevoked   = "revoked"
)

// keyStatus returns one status per key: revoked, else suspended, else
// expired, else active.
func keyStatus(k *store.Key, now time.Time) string {
	switch {
	case k.Revoked:
		return statusRevoked
	case k.Suspended:
		return statusSuspended
	case k.Expired(now):
		return statusExpired
	}
	return statusActive
}

// keyView is how an API key appears in responses: masked, never the
// secret. "key" holds the mask too, where paygate-mcp listings put it.
type keyView struct {
	ID              string            `json:"id"`
	Key             string            `json:"key"`
	KeyMasked       string            `json:"keyMasked"`
	Name            string            `json:"name"`
	Alias           *string           `json:"alias"`
	Namespace       string            `json:"namespace"`
	Status          string            `json:"status"`
	Active          bool              `json:"active"` // not revoked (paygate-mcp's meaning)
	Suspended       bool              `json:"suspended"`
	Expired         bool              `json:"expired"`
	Revoked         bool              `json:"revoked"`
	Credits         credits.Credits   `json:"credits"`
	TotalSpent      credits.Credits   `json:"totalSpent"`
	TotalCalls      int64             `json:"totalCalls"`
	SpendingLimit   credits.Credits   `json:"spendingLimit"`
	RemainingBudget *credits.Credits  `json:"remainingBudget"` // null: no spending limit
	CreatedAt       string            `json:"createdAt"`
	LastUsedAt      *string           `json:"lastUsedAt"`
	ExpiresAt       *string           `json:"expiresAt"`
	RevokedAt       *string           `json:"revokedAt,omitempty"`
	AllowedTools    []string          `json:"allowedTools"`
	DeniedTools     []string          `json:"deniedTools"`
	IPAllowlist     []string          `json:"ipAllowlist"`
	Quota           *store.Quota      `json:"quota"` // null: the global quota applies
	RateLimitPerMin *int64            `json:"rateLimitPerMin"`
	Tags            map[string]string `json:"tags"`
	Group           string            `json:"group,omitempty"`
}

func viewKey(k *store.Key, acct store.Account, now time.Time) keyView {
	v := keyView{
		ID: k.ID, Key: k.Mask(), KeyMasked: k.Mask(), Name: k.Name, Namespace: k.Namespace,
		Status: keyStatus(k, now), Active: !k.Revoked, Suspended: k.Suspended, Expired: k.Expired(now), Revoked: k.Revoked,
		Credits: acct.Balance, TotalSpent: acct.Spent, TotalCalls: acct.Calls, SpendingLimit: k.SpendingLimit,
		RemainingBudget: remainingBudget(k, acct),
		CreatedAt:       fmtTime(k.CreatedAt), LastUsedAt: optTime(acct.LastUsedAt), ExpiresAt: optTime(k.ExpiresAt),
		RevokedAt:    optTime(k.RevokedAt),
		AllowedTools: nonNil(k.AllowedTools), DeniedTools: nonNil(k.DeniedTools), IPAllowlist: ipStrings(k.IPAllowlist),
		Quota: k.Quota, RateLimitPerMin: k.RateLimitPerMin, Tags: k.Tags, Group: k.Group,
	}
	if k.Alias != "" {
		a := k.Alias
		v.Alias = &a
	}
	if v.Tags == nil {
		v.Tags = map[string]string{}
	}
	return v
}

func remainingBudget(k *store.Key, acct store.Account) *credits.Credits {
	if k.SpendingLimit <= 0 {
		return nil
	}
	r := max(k.SpendingLimit-acct.Spent, 0)
	return &r
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ipStrings renders an allowlist: single addresses without their /32 or
// /128, networks as CIDRs.
func ipStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		if p.IsSingleIP() {
			out[i] = p.Addr().String()
		} else {
			out[i] = p.String()
		}
	}
	return out
}

// resolveKey finds the key that ref names: a key id ("key_..."), the full
// secret ("pg_...") or an alias. One resolver serves every "key", "from"
// and "to" parameter. Errors never echo ref: it may be a secret.
func (a *API) resolveKey(ctx context.Context, field, ref string) (*store.Key, store.Account, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil, store.Account{}, badField(field, "is required (a key id, secret or alias)")
	}
	id := ref
	switch {
	case strings.HasPrefix(ref, keys.IDPrefix):
	case strings.HasPrefix(ref, keys.APIKeyPrefix):
		k, err := a.st.LookupHash(ctx, keys.Hash(ref))
		if err != nil {
			return nil, store.Account{}, keyLookupError(field, err)
		}
		id = k.ID
	default:
		k, err := a.st.GetKeyByAlias(ctx, ref)
		if err != nil {
			return nil, store.Account{}, keyLookupError(field, err)
		}
		id = k.ID
	}
	k, acct, err := a.st.GetKey(ctx, id)
	if err != nil {
		return nil, store.Account{}, keyLookupError(field, err)
	}
	return k, acct, nil
}

func keyLookupError(field string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound(field, "key")
	}
	return err
}

// reply writes v as the success response. Fields the request carried that
// paygate ignores are listed in an "ignored" member.
func reply(w http.ResponseWriter, r *http.Request, status int, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	if ign := state(r).ignored; len(ign) > 0 && len(b) > 1 && b[0] == '{' {
		extra, err := jsonMarshal(ign)
		if err != nil {
			return err
		}
		sep := ","
		if string(b) == "{}" {
			sep = ""
		}
		b = append(append(append(b[:len(b)-1:len(b)-1], sep+`"ignored":`...), extra...), '}')
	}
	writeRaw(w, status, b)
	return nil
}

// requireLive refuses operations on revoked keys.
func requireLive(field string, k *store.Key) error {
	if k.Revoked {
		return conflict(field, "key %s is revoked", k.ID)
	}
	return nil
}
