package admin

import (
	"net/http"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/store"
)

// rateWindow is the window of every rate limit (the gate's: per minute).
// The gate counts a key's calls under its id and per-tool calls under
// "<id>:<tool>"; the status route peeks at the same windows.
const rateWindow = time.Minute

func (a *API) limitRoutes() []Route {
	keyParam := []Param{{Name: "key", Type: "string", Required: true, Description: "key id, secret or alias"}}
	return []Route{
		{Method: "GET", Pattern: "/keys/rate-limit-status", Role: store.RoleViewer, Handler: a.rateLimitStatus, Doc: Doc{
			Tag: "limits", Summary: "A key's rate limit windows, without consuming a call",
			Query: keyParam, Response: rateStatusResponse{},
		}},
		{Method: "GET", Pattern: "/keys/quota-status", Role: store.RoleViewer, Handler: a.quotaStatus, Doc: Doc{
			Tag: "limits", Summary: "A key's daily and monthly quota usage",
			Description: "quotaSource is per-key, global or none. A remaining value is null when its limit is 0 (unlimited).",
			Query:       keyParam, Response: quotaStatusResponse{},
		}},
		{Method: "GET", Pattern: "/balance", Role: RoleAPIKey, Handler: a.balance, Doc: Doc{
			Tag: "self-service", Summary: "The calling API key's credits, limits, quota, ACL and expiry",
			Description: "Authenticated with the API key itself (X-API-Key or Authorization: Bearer).",
			Response:    balanceResponse{},
		}},
	}
}

type windowStatus struct {
	Limit     int64  `json:"limit"` // 0: unlimited
	Used      int64  `json:"used"`
	Remaining *int64 `json:"remaining"` // null when unlimited
	ResetInMs int64  `json:"resetInMs"`
	WindowMs  int64  `json:"windowMs"`
}

type rateStatusResponse struct {
	ID      string                  `json:"id"`
	Key     string                  `json:"key"` // masked
	Name    string                  `json:"name"`
	Global  windowStatus            `json:"global"`
	PerTool map[string]windowStatus `json:"perTool,omitempty"`
}

func (a *API) peek(r *http.Request, scope string, limit int64, now time.Time) (windowStatus, error) {
	ws := windowStatus{Limit: limit, WindowMs: rateWindow.Milliseconds()}
	if limit <= 0 {
		return ws, nil
	}
	res, err := a.limiter.Peek(r.Context(), scope, limit, rateWindow, now)
	if err != nil {
		return ws, err
	}
	rem := max(res.Remaining, 0)
	ws.Remaining = &rem
	ws.Used = max(limit-rem, 0)
	ws.ResetInMs = max(res.Reset.Sub(now).Milliseconds(), 0)
	return ws, nil
}

func (a *API) rateLimitStatus(w http.ResponseWriter, r *http.Request) error {
	if a.limiter == nil {
		return newError(CodeUnavailable, "", "no rate limiter is configured")
	}
	k, _, err := a.resolveKey(r.Context(), "key", queryOf(r).str("key"))
	if err != nil {
		return err
	}
	p, now := a.snapshot(), a.now()
	out := rateStatusResponse{ID: k.ID, Key: k.Mask(), Name: k.Name}
	if out.Global, err = a.peek(r, k.ID, p.KeyRateLimit(k), now); err != nil {
		return err
	}
	for _, t := range p.Pricing() {
		if t.RateLimitPerMin <= 0 {
			continue
		}
		ws, err := a.peek(r, k.ID+":"+t.Name, t.RateLimitPerMin, now)
		if err != nil {
			return err
		}
		if out.PerTool == nil {
			out.PerTool = map[string]windowStatus{}
		}
		out.PerTool[t.Name] = ws
	}
	return reply(w, r, http.StatusOK, out)
}

type quotaPeriod struct {
	CallsUsed        int64            `json:"callsUsed"`
	CallsLimit       int64            `json:"callsLimit"`
	CallsRemaining   *int64           `json:"callsRemaining"`
	CreditsUsed      credits.Credits  `json:"creditsUsed"`
	CreditsLimit     credits.Credits  `json:"creditsLimit"`
	CreditsRemaining *credits.Credits `json:"creditsRemaining"`
	ResetDay         string           `json:"resetDay,omitempty"`   // the UTC day the counters belong to
	ResetMonth       string           `json:"resetMonth,omitempty"` // the UTC month the counters belong to
	ResetsAt         string           `json:"resetsAt"`             // when they start again from zero
}

type quotaStatusResponse struct {
	ID          string             `json:"id"`
	Key         string             `json:"key"` // masked
	Name        string             `json:"name"`
	QuotaSource policy.QuotaSource `json:"quotaSource"`
	Daily       quotaPeriod        `json:"daily"`
	Monthly     quotaPeriod        `json:"monthly"`
}

func remaining(limit, used int64) *int64 {
	if limit <= 0 {
		return nil
	}
	r := max(limit-used, 0)
	return &r
}

// quotaUsage reports a key's quota counters for the current UTC day and
// month; counters of an earlier period count as zero.
func quotaUsage(q store.Quota, acct store.Account, now time.Time) (daily, monthly quotaPeriod) {
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	daily = quotaPeriod{CallsLimit: q.DailyCalls, CreditsLimit: q.DailyCredits,
		ResetDay: day.Format(time.DateOnly), ResetsAt: fmtTime(day.AddDate(0, 0, 1))}
	if acct.Day == store.DayOf(now) {
		daily.CallsUsed, daily.CreditsUsed = acct.DailyCalls, acct.DailyCredits
	}
	daily.CallsRemaining, daily.CreditsRemaining = remaining(daily.CallsLimit, daily.CallsUsed), remaining(daily.CreditsLimit, daily.CreditsUsed)
	monthly = quotaPeriod{CallsLimit: q.MonthlyCalls, CreditsLimit: q.MonthlyCredits,
		ResetMonth: month.Format("2006-01"), ResetsAt: fmtTime(month.AddDate(0, 1, 0))}
	if acct.Month == store.MonthOf(now) {
		monthly.CallsUsed, monthly.CreditsUsed = acct.MonthlyCalls, acct.MonthlyCredits
	}
	monthly.CallsRemaining, monthly.CreditsRemaining = remaining(monthly.CallsLimit, monthly.CallsUsed), remaining(monthly.CreditsLimit, monthly.CreditsUsed)
	return daily, monthly
}

func (a *API) quotaStatus(w http.ResponseWriter, r *http.Request) error {
	k, acct, err := a.resolveKey(r.Context(), "key", queryOf(r).str("key"))
	if err != nil {
		return err
	}
	q, src := a.snapshot().Quota(k)
	out := quotaStatusResponse{ID: k.ID, Key: k.Mask(), Name: k.Name, QuotaSource: src}
	out.Daily, out.Monthly = quotaUsage(q, acct, a.now())
	return reply(w, r, http.StatusOK, out)
}

type balanceQuota struct {
	Source  policy.QuotaSource `json:"source"`
	Daily   quotaPeriod        `json:"daily"`
	Monthly quotaPeriod        `json:"monthly"`
}

type balanceResponse struct {
	ID              string           `json:"id"`
	KeyMasked       string           `json:"keyMasked"`
	Name            string           `json:"name"`
	Namespace       string           `json:"namespace"`
	Credits         credits.Credits  `json:"credits"`
	TotalSpent      credits.Credits  `json:"totalSpent"`
	TotalCalls      int64            `json:"totalCalls"`
	LastUsedAt      *string          `json:"lastUsedAt"`
	SpendingLimit   credits.Credits  `json:"spendingLimit"`
	RemainingBudget *credits.Credits `json:"remainingBudget"` // null: no spending limit
	Quota           *balanceQuota    `json:"quota"`           // null: no quota applies
	AllowedTools    []string         `json:"allowedTools"`
	DeniedTools     []string         `json:"deniedTools"`
	ExpiresAt       *string          `json:"expiresAt"`
	Expired         bool             `json:"expired"`
	Suspended       bool             `json:"suspended"`
	RateLimitPerMin int64            `json:"rateLimitPerMin"` // 0: unlimited
}

func (a *API) balance(w http.ResponseWriter, r *http.Request) error {
	k := state(r).apiKey
	acct, err := a.st.Account(r.Context(), k.ID)
	if err != nil {
		return err
	}
	p, now := a.snapshot(), a.now()
	out := balanceResponse{ID: k.ID, KeyMasked: k.Mask(), Name: k.Name, Namespace: k.Namespace, Credits: acct.Balance,
		TotalSpent: acct.Spent, TotalCalls: acct.Calls, LastUsedAt: optTime(acct.LastUsedAt),
		SpendingLimit: k.SpendingLimit, RemainingBudget: remainingBudget(k, acct),
		AllowedTools: nonNil(k.AllowedTools), DeniedTools: nonNil(k.DeniedTools), ExpiresAt: optTime(k.ExpiresAt),
		Expired: k.Expired(now), Suspended: k.Suspended, RateLimitPerMin: p.KeyRateLimit(k)}
	if q, src := p.Quota(k); src != policy.QuotaNone {
		bq := &balanceQuota{Source: src}
		bq.Daily, bq.Monthly = quotaUsage(q, acct, now)
		out.Quota = bq
	}
	return reply(w, r, http.StatusOK, out)
}
