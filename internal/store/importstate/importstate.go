// Package importstate migrates a paygate-mcp state file (its --state-file
// JSON) into a store.Store.
//
// The file is a JSON array of [secret, record] pairs, the entries of the
// product's in-memory key map. Secrets are hashed on the way in (SHA-256;
// only the 7-character prefix and 4-character suffix are kept for masks),
// so the store never holds them in plain text as the old file did. Each
// key's credits become a grant ledger line; keys that were inactive are
// imported revoked. totalSpent, totalCalls, lastUsedAt and the current
// quota counters are carried as the account's opening values, without
// fabricating charge lines, when the store supports it (see Importer).
//
// Entries that cannot be imported faithfully (fractional or negative
// amounts, malformed IP allowlists, a secret or alias already taken) are
// skipped and reported with their index; the rest are imported. Running
// the import again skips the keys already present, so a fixed file can be
// re-run.
package importstate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

// Importer is implemented by stores that can create a key with opening
// account counters (store/sqlite's Store does). Without it, Import falls
// back to CreateKey and reports that spent and call totals were not
// carried.
type Importer = store.KeyImporter

// Report says what Import did.
type Report struct {
	Entries  int             // pairs in the file
	Imported int             // keys created
	Revoked  int             // of those, imported revoked (inactive in the file)
	Credits  credits.Credits // total granted
	Skipped  []Skip
	Warnings []string // imported, but something was not carried over
}

// Skip is an entry that was not imported.
type Skip struct {
	Index  int    // position in the file, from 0
	Mask   string // the secret's mask, when known
	Reason string
}

func (s Skip) String() string { return fmt.Sprintf("entry %d (%s): %s", s.Index, s.Mask, s.Reason) }

// record is paygate-mcp's ApiKeyRecord as its state file stores it.
// Amounts stay raw so fractions and negatives are caught, not rounded.
type record struct {
	Key                 string            `json:"key"`
	Name                string            `json:"name"`
	Credits             json.RawMessage   `json:"credits"`
	TotalSpent          json.RawMessage   `json:"totalSpent"`
	TotalCalls          json.RawMessage   `json:"totalCalls"`
	CreatedAt           string            `json:"createdAt"`
	LastUsedAt          *string           `json:"lastUsedAt"`
	Active              *bool             `json:"active"`
	Suspended           bool              `json:"suspended"`
	SpendingLimit       json.RawMessage   `json:"spendingLimit"`
	AllowedTools        []string          `json:"allowedTools"`
	DeniedTools         []string          `json:"deniedTools"`
	ExpiresAt           *string           `json:"expiresAt"`
	Quota               *quota            `json:"quota"`
	Tags                map[string]string `json:"tags"`
	IPAllowlist         []string          `json:"ipAllowlist"`
	Namespace           string            `json:"namespace"`
	Group               string            `json:"group"`
	Alias               string            `json:"alias"`
	QuotaDailyCalls     json.RawMessage   `json:"quotaDailyCalls"`
	QuotaMonthlyCalls   json.RawMessage   `json:"quotaMonthlyCalls"`
	QuotaDailyCredits   json.RawMessage   `json:"quotaDailyCredits"`
	QuotaMonthlyCredits json.RawMessage   `json:"quotaMonthlyCredits"`
	QuotaLastResetDay   string            `json:"quotaLastResetDay"`
	QuotaLastResetMonth string            `json:"quotaLastResetMonth"`

	// Known but not carried: reported when set.
	AllowedCountries []string        `json:"allowedCountries"`
	DeniedCountries  []string        `json:"deniedCountries"`
	AutoTopup        json.RawMessage `json:"autoTopup"`
	Notes            json.RawMessage `json:"notes"`
	WebhookURL       string          `json:"webhookUrl"`
}

type quota struct {
	DailyCallLimit     json.RawMessage `json:"dailyCallLimit"`
	MonthlyCallLimit   json.RawMessage `json:"monthlyCallLimit"`
	DailyCreditLimit   json.RawMessage `json:"dailyCreditLimit"`
	MonthlyCreditLimit json.RawMessage `json:"monthlyCreditLimit"`
}

// Import reads a state file from r and creates its keys in st. now stamps
// what the file does not say (revocation time, missing creation time). It
// returns an error only when the file cannot be read as a state file or
// the store fails; per-entry problems are in the Report.
func Import(ctx context.Context, st store.Store, r io.Reader, now time.Time) (Report, error) {
	var rep Report
	var pairs []json.RawMessage
	dec := json.NewDecoder(r)
	if err := dec.Decode(&pairs); err != nil {
		return rep, fmt.Errorf("import state: want a JSON array of [key, record] pairs: %w", err)
	}
	rep.Entries = len(pairs)
	imp, canOpen := st.(Importer)
	if !canOpen {
		rep.Warnings = append(rep.Warnings, "store cannot carry totalSpent/totalCalls/quota counters; accounts start from zero")
	}
	type entry struct {
		i       int
		k       *store.Key
		initial credits.Credits
		opening store.Account
		warns   []string
	}
	var active, inactive []entry
	seen := make(map[store.Hash]int)
	for i, raw := range pairs {
		k, initial, opening, warns, skip := convert(i, raw, now)
		if skip == nil {
			if first, dup := seen[k.Hash]; dup {
				skip = &Skip{i, k.Mask(), fmt.Sprintf("duplicate of entry %d", first)}
			} else {
				seen[k.Hash] = i
			}
		}
		switch {
		case skip != nil:
			rep.Skipped = append(rep.Skipped, *skip)
		case k.Revoked:
			inactive = append(inactive, entry{i, k, initial, opening, warns})
		default:
			active = append(active, entry{i, k, initial, opening, warns})
		}
	}
	// Live keys first: paygate-mcp's rotation leaves the old, inactive
	// record with the same alias, and the live key must win it.
	for _, e := range append(active, inactive...) {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if _, err := st.LookupHash(ctx, e.k.Hash); err == nil {
			rep.Skipped = append(rep.Skipped, Skip{e.i, e.k.Mask(), "already in the store (imported before?)"})
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return rep, fmt.Errorf("import state: entry %d: %w", e.i, err)
		}
		if e.k.Revoked && e.k.Alias != "" {
			if _, err := st.GetKeyByAlias(ctx, e.k.Alias); err == nil {
				e.warns = append(e.warns, fmt.Sprintf("alias %q belongs to a live key; imported without it", e.k.Alias))
				e.k.Alias = ""
			}
		}
		m := store.Meta{Actor: "import", Note: "paygate-mcp state file"}
		var err error
		if canOpen {
			_, _, err = imp.ImportKey(ctx, e.k, e.initial, e.opening, m)
		} else {
			_, _, err = st.CreateKey(ctx, e.k, e.initial, m)
		}
		switch {
		case errors.Is(err, store.ErrConflict):
			rep.Skipped = append(rep.Skipped, Skip{e.i, e.k.Mask(), fmt.Sprintf("alias %q is taken", e.k.Alias)})
			continue
		case errors.Is(err, store.ErrAlreadyExists):
			rep.Skipped = append(rep.Skipped, Skip{e.i, e.k.Mask(), "duplicate key"})
			continue
		case err != nil:
			return rep, fmt.Errorf("import state: entry %d (%s): %w", e.i, e.k.Mask(), err)
		}
		rep.Imported++
		rep.Credits += e.initial
		if e.k.Revoked {
			rep.Revoked++
		}
		for _, w := range e.warns {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("entry %d (%s): %s", e.i, e.k.Mask(), w))
		}
	}
	slices.SortFunc(rep.Skipped, func(a, b Skip) int { return a.Index - b.Index })
	return rep, nil
}

// convert maps one [secret, record] pair to a key, its credits and its
// opening account.
func convert(i int, raw json.RawMessage, now time.Time) (k *store.Key, initial credits.Credits, opening store.Account, warns []string, skip *Skip) {
	fail := func(mask, format string, args ...any) (*store.Key, credits.Credits, store.Account, []string, *Skip) {
		return nil, 0, store.Account{}, nil, &Skip{Index: i, Mask: mask, Reason: fmt.Sprintf(format, args...)}
	}
	var pair []json.RawMessage
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return fail("", "not a [key, record] pair")
	}
	var secret string
	if err := json.Unmarshal(pair[0], &secret); err != nil || len(secret) < 11 {
		return fail("", "key is not a string of at least 11 characters")
	}
	mask := secret[:7] + "..." + secret[len(secret)-4:]
	var rec record
	d := json.NewDecoder(bytes.NewReader(pair[1]))
	if err := d.Decode(&rec); err != nil {
		return fail(mask, "record: %v", err)
	}
	if rec.Key != "" && rec.Key != secret {
		// The old gateway authenticated with the map key; keep that one.
		warns = append(warns, "record.key differs from the entry's key; the entry's key was used")
	}

	amount := func(name string, raw json.RawMessage) (credits.Credits, error) {
		if len(raw) == 0 || string(raw) == "null" {
			return 0, nil
		}
		n, err := credits.Parse(raw)
		if err != nil {
			return 0, fmt.Errorf("%s %s: %w", name, raw, err)
		}
		return n, nil
	}
	var errs []error
	get := func(name string, raw json.RawMessage) credits.Credits {
		n, err := amount(name, raw)
		errs = append(errs, err)
		return n
	}
	initial = get("credits", rec.Credits)
	spent := get("totalSpent", rec.TotalSpent)
	calls := get("totalCalls", rec.TotalCalls)
	limit := get("spendingLimit", rec.SpendingLimit)
	var q *store.Quota
	if rec.Quota != nil {
		q = &store.Quota{
			DailyCalls:     get("quota.dailyCallLimit", rec.Quota.DailyCallLimit),
			MonthlyCalls:   get("quota.monthlyCallLimit", rec.Quota.MonthlyCallLimit),
			DailyCredits:   get("quota.dailyCreditLimit", rec.Quota.DailyCreditLimit),
			MonthlyCredits: get("quota.monthlyCreditLimit", rec.Quota.MonthlyCreditLimit),
		}
	}
	dailyCalls := get("quotaDailyCalls", rec.QuotaDailyCalls)
	monthlyCalls := get("quotaMonthlyCalls", rec.QuotaMonthlyCalls)
	dailyCredits := get("quotaDailyCredits", rec.QuotaDailyCredits)
	monthlyCredits := get("quotaMonthlyCredits", rec.QuotaMonthlyCredits)
	if err := errors.Join(errs...); err != nil {
		return fail(mask, "refused: %v", strings.ReplaceAll(err.Error(), "\n", "; "))
	}

	// An allowlist entry we cannot parse is refused, never dropped: dropping
	// it could leave an empty list, which allows every address.
	var ips []netip.Prefix
	for _, s := range rec.IPAllowlist {
		p, err := parseIP(s)
		if err != nil {
			return fail(mask, "ipAllowlist entry %q: %v", s, err)
		}
		ips = append(ips, p)
	}

	sum := sha256.Sum256([]byte(secret))
	k = &store.Key{
		ID: store.NewKeyID(), Hash: sum, Prefix: secret[:7], Suffix: secret[len(secret)-4:],
		Name: rec.Name, Namespace: rec.Namespace, Alias: rec.Alias, Group: rec.Group,
		Suspended: rec.Suspended, AllowedTools: rec.AllowedTools, DeniedTools: rec.DeniedTools,
		IPAllowlist: ips, SpendingLimit: limit, Quota: q, Tags: rec.Tags,
	}
	if t, ok := parseTime(rec.CreatedAt); ok {
		k.CreatedAt = t
	} else {
		k.CreatedAt = now
		if rec.CreatedAt != "" {
			warns = append(warns, fmt.Sprintf("createdAt %q unreadable; set to the import time", rec.CreatedAt))
		}
	}
	if rec.ExpiresAt != nil && *rec.ExpiresAt != "" {
		if t, ok := parseTime(*rec.ExpiresAt); ok {
			k.ExpiresAt = t
		} else {
			// paygate-mcp treated an unreadable expiry as none; so do we, loudly.
			warns = append(warns, fmt.Sprintf("expiresAt %q unreadable; the key does not expire (as before)", *rec.ExpiresAt))
		}
	}
	if rec.Active != nil && !*rec.Active {
		k.Revoked, k.RevokedAt = true, now
	}
	if len(rec.AllowedCountries)+len(rec.DeniedCountries) > 0 {
		warns = append(warns, "allowedCountries/deniedCountries not supported; geo restriction dropped")
	}
	if len(rec.AutoTopup) > 0 && string(rec.AutoTopup) != "null" {
		warns = append(warns, "autoTopup not carried")
	}
	if len(rec.Notes) > 0 && string(rec.Notes) != "null" && string(rec.Notes) != "[]" {
		warns = append(warns, "notes not carried")
	}
	if rec.WebhookURL != "" {
		warns = append(warns, "per-key webhook not carried")
	}

	opening = store.Account{Spent: spent, Calls: calls}
	if rec.LastUsedAt != nil {
		if t, ok := parseTime(*rec.LastUsedAt); ok {
			opening.LastUsedAt = t
		}
	}
	// Quota counters count only in their own period; a stale period reads
	// as zero on the next call anyway.
	if d, ok := parseDay(rec.QuotaLastResetDay); ok {
		opening.Day, opening.DailyCalls, opening.DailyCredits = d, dailyCalls, dailyCredits
	}
	if m, ok := parseMonth(rec.QuotaLastResetMonth); ok {
		opening.Month, opening.MonthlyCalls, opening.MonthlyCredits = m, monthlyCalls, monthlyCredits
	}
	return k, initial, opening, warns, nil
}

func parseIP(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func parseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	return t.UTC(), err == nil
}

func parseDay(s string) (int32, bool) {
	t, err := time.Parse(time.DateOnly, s)
	return store.DayOf(t), err == nil
}

func parseMonth(s string) (int32, bool) {
	t, err := time.Parse("2006-01", s)
	return store.MonthOf(t), err == nil
}
