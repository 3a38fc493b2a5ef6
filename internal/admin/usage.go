package admin

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/store"
)

// maxUsageScan bounds how many usage records one report reads (newest
// first); reports say "truncated" when they hit it.
const maxUsageScan = 100_000

func (a *API) usageRoutes() []Route {
	timeParams := []Param{
		{Name: "since", Type: "string", Description: "RFC 3339; records at or after"},
		{Name: "until", Type: "string", Description: "RFC 3339; records before"},
	}
	return []Route{
		{Method: "GET", Pattern: "/keys/usage", Role: store.RoleViewer, Handler: a.keyUsage, Doc: Doc{
			Tag: "usage", Summary: "One key's usage: per-tool stats, deny reasons, hourly series, recent events",
			Query:    append([]Param{{Name: "key", Type: "string", Required: true, Description: "key id, secret or alias"}}, timeParams...),
			Response: keyUsageResponse{},
		}},
		{Method: "GET", Pattern: "/usage", Role: store.RoleViewer, Handler: a.usageExport, Doc: Doc{
			Tag: "usage", Summary: "Export usage events (JSON or CSV), oldest first, keys masked",
			Query: append(append([]Param{}, timeParams...),
				Param{Name: "format", Type: "string", Enum: []string{"json", "csv"}},
				Param{Name: "namespace", Type: "string"},
				Param{Name: "key", Type: "string", Description: "key id, secret or alias"},
				Param{Name: "limit", Type: "integer", Description: "1 to 100000 (default 10000)"},
				Param{Name: "afterSeq", Type: "integer", Description: "continue after this seq (paging)"},
			),
			Response: usageExportResponse{}, CSV: true,
		}},
		{Method: "GET", Pattern: "/status", Role: store.RoleViewer, Handler: a.status, Doc: Doc{
			Tag: "usage", Summary: "Dashboard: key counts, credits, per-tool breakdown, deny reasons",
			Query:    append([]Param{{Name: "namespace", Type: "string"}}, timeParams...),
			Response: statusResponse{},
		}},
	}
}

// toolStats aggregates usage records of one tool.
type toolStats struct {
	Calls   int64           `json:"calls"` // allowed + denied
	Allowed int64           `json:"allowed"`
	Denied  int64           `json:"denied"`
	Credits credits.Credits `json:"credits"`
}

type usageTotals struct {
	Calls    int64           `json:"totalCalls"`
	Allowed  int64           `json:"totalAllowed"`
	Denied   int64           `json:"totalDenied"`
	Credits  credits.Credits `json:"totalCreditsSpent"`
	Refunded int64           `json:"totalRefunded"`
}

// aggregate folds usage records into totals, per-tool stats and deny
// reasons.
type aggregate struct {
	totals  usageTotals
	perTool map[string]*toolStats
	reasons map[string]int64
}

func aggregateOf(recs []store.UsageRecord) aggregate {
	g := aggregate{perTool: map[string]*toolStats{}, reasons: map[string]int64{}}
	for i := range recs {
		u := &recs[i]
		name := u.Tool
		if name == "" {
			name = u.Method
		}
		ts := g.perTool[name]
		if ts == nil {
			ts = &toolStats{}
			g.perTool[name] = ts
		}
		ts.Calls++
		g.totals.Calls++
		if u.Allowed {
			ts.Allowed++
			ts.Credits += u.Credits
			g.totals.Allowed++
			g.totals.Credits += u.Credits
			if u.Refunded {
				g.totals.Refunded++
			}
		} else {
			ts.Denied++
			g.totals.Denied++
		}
		if u.Reason != "" {
			g.reasons[u.Reason]++
		}
	}
	return g
}

func (g aggregate) tools() map[string]toolStats {
	out := make(map[string]toolStats, len(g.perTool))
	for k, v := range g.perTool {
		out[k] = *v
	}
	return out
}

// usageEvent is one usage record in a response, the key masked.
type usageEvent struct {
	Seq        int64           `json:"seq"`
	Timestamp  string          `json:"timestamp"`
	KeyID      string          `json:"keyId,omitempty"`
	Key        string          `json:"key,omitempty"` // masked
	Namespace  string          `json:"namespace,omitempty"`
	Method     string          `json:"method"`
	Tool       string          `json:"tool,omitempty"`
	Allowed    bool            `json:"allowed"`
	Credits    credits.Credits `json:"creditsCharged"`
	Refunded   bool            `json:"refunded,omitempty"`
	Reason     string          `json:"denyReason,omitempty"`
	Outcome    string          `json:"outcome,omitempty"`
	DurationMs float64         `json:"durationMs"`
	RequestID  string          `json:"requestId,omitempty"`
}

func eventOf(u *store.UsageRecord) usageEvent {
	return usageEvent{Seq: u.Seq, Timestamp: fmtTime(u.Time), KeyID: u.KeyID, Key: u.KeyMask, Namespace: u.Namespace,
		Method: u.Method, Tool: u.Tool, Allowed: u.Allowed, Credits: u.Credits, Refunded: u.Refunded, Reason: u.Reason,
		Outcome: u.Outcome, DurationMs: float64(u.Duration.Microseconds()) / 1000, RequestID: u.RequestID}
}

type hourBucket struct {
	Hour    string          `json:"hour"`
	Calls   int64           `json:"calls"`
	Credits credits.Credits `json:"credits"`
	Denied  int64           `json:"denied"`
}

type keyUsageResponse struct {
	ID        string  `json:"id"`
	Key       string  `json:"key"` // masked
	Name      string  `json:"name"`
	Alias     *string `json:"alias"`
	Namespace string  `json:"namespace"`
	Credits   int64   `json:"credits"`
	Status    string  `json:"status"`
	Active    bool    `json:"active"`
	Suspended bool    `json:"suspended"`
	usageTotals
	PerTool      map[string]toolStats `json:"perTool"`
	DenyReasons  map[string]int64     `json:"denyReasons"`
	TimeSeries   []hourBucket         `json:"timeSeries"`
	RecentEvents []usageEvent         `json:"recentEvents"`
	Truncated    bool                 `json:"truncated"`
}

// timeRange reads since and until.
func timeRange(q query) (since, until time.Time, err error) {
	if since, err = q.time("since"); err != nil {
		return
	}
	if until, err = q.time("until"); err != nil {
		return
	}
	if !since.IsZero() && !until.IsZero() && !until.After(since) {
		err = badField("until", "must be after since")
	}
	return
}

func (a *API) keyUsage(w http.ResponseWriter, r *http.Request) error {
	q := queryOf(r)
	since, until, err := timeRange(q)
	if err != nil {
		return err
	}
	k, acct, err := a.resolveKey(r.Context(), "key", q.str("key"))
	if err != nil {
		return err
	}
	recs, err := a.st.Usage(r.Context(), store.UsageFilter{KeyID: k.ID, Since: since, Until: until, Limit: maxUsageScan, Desc: true})
	if err != nil {
		return err
	}
	g := aggregateOf(recs)
	v := viewKey(k, acct, a.now())
	out := keyUsageResponse{ID: k.ID, Key: k.Mask(), Name: k.Name, Alias: v.Alias, Namespace: k.Namespace,
		Credits: acct.Balance, Status: v.Status, Active: v.Active, Suspended: k.Suspended, usageTotals: g.totals,
		PerTool: g.tools(), DenyReasons: g.reasons, Truncated: len(recs) == maxUsageScan}
	hours := map[int64]*hourBucket{}
	for i := range recs {
		u := &recs[i]
		h := u.Time.UTC().Truncate(time.Hour)
		b := hours[h.Unix()]
		if b == nil {
			b = &hourBucket{Hour: fmtTime(h)}
			hours[h.Unix()] = b
		}
		b.Calls++
		if u.Allowed {
			b.Credits += u.Credits
		} else {
			b.Denied++
		}
	}
	out.TimeSeries = make([]hourBucket, 0, len(hours))
	for _, b := range hours {
		out.TimeSeries = append(out.TimeSeries, *b)
	}
	slices.SortFunc(out.TimeSeries, func(x, y hourBucket) int { return cmp.Compare(x.Hour, y.Hour) })
	n := min(len(recs), 50)
	out.RecentEvents = make([]usageEvent, n)
	for i := range n {
		out.RecentEvents[i] = eventOf(&recs[i])
	}
	return reply(w, r, http.StatusOK, out)
}

type usageExportResponse struct {
	Count     int          `json:"count"`
	Limit     int          `json:"limit"`
	Truncated bool         `json:"truncated"` // more events match: continue with afterSeq=lastSeq
	LastSeq   int64        `json:"lastSeq,omitempty"`
	Events    []usageEvent `json:"events"`
}

func (a *API) usageExport(w http.ResponseWriter, r *http.Request) error {
	q := queryOf(r)
	format, err := q.oneOf("format", "json", "json", "csv")
	if err != nil {
		return err
	}
	f := store.UsageFilter{}
	if f.Since, f.Until, err = timeRange(q); err != nil {
		return err
	}
	if f.Limit, err = q.intIn("limit", 10_000, 1, maxUsageScan); err != nil {
		return err
	}
	after, err := q.intIn("afterSeq", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	f.AfterSeq = int64(after)
	if ns := q.str("namespace"); ns != "" {
		if f.Namespace, err = checkNamespace("namespace", ns); err != nil {
			return err
		}
	}
	if q.has("key") {
		k, _, err := a.resolveKey(r.Context(), "key", q.str("key"))
		if err != nil {
			return err
		}
		f.KeyID = k.ID
	}
	limit := f.Limit
	f.Limit++ // one more tells whether the page is complete
	recs, err := a.st.Usage(r.Context(), f)
	if err != nil {
		return err
	}
	truncated := len(recs) > limit
	recs = recs[:min(len(recs), limit)]
	if format == "csv" {
		header := []string{"seq", "timestamp", "keyId", "key", "namespace", "method", "tool", "allowed",
			"creditsCharged", "refunded", "denyReason", "outcome", "durationMs", "requestId"}
		name := "paygate-usage-" + a.now().UTC().Format("20060102-150405") + ".csv"
		return writeCSV(w, name, header, func(emit func([]string) error) error {
			for i := range recs {
				e := eventOf(&recs[i])
				if err := emit([]string{fmtInt(e.Seq), e.Timestamp, e.KeyID, e.Key, e.Namespace, csvText(e.Method),
					csvText(e.Tool), strconv.FormatBool(e.Allowed), fmtInt(e.Credits), strconv.FormatBool(e.Refunded),
					csvText(e.Reason), csvText(e.Outcome), strconv.FormatFloat(e.DurationMs, 'f', -1, 64),
					csvText(e.RequestID)}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	out := usageExportResponse{Count: len(recs), Limit: limit, Truncated: truncated, Events: make([]usageEvent, len(recs))}
	for i := range recs {
		out.Events[i] = eventOf(&recs[i])
	}
	if len(recs) > 0 {
		out.LastSeq = recs[len(recs)-1].Seq
	}
	return reply(w, r, http.StatusOK, out)
}

type keyCounts struct {
	Total     int `json:"total"`
	Active    int `json:"active"`
	Suspended int `json:"suspended"`
	Expired   int `json:"expired"`
	Revoked   int `json:"revoked"`
}

type pricingSummary struct {
	DefaultCreditsPerCall credits.Credits    `json:"defaultCreditsPerCall"`
	GlobalRateLimitPerMin int64              `json:"globalRateLimitPerMin"`
	ShadowMode            bool               `json:"shadowMode"`
	Tools                 []policy.ToolPrice `json:"tools"`
}

type statusResponse struct {
	Namespace    string               `json:"namespace,omitempty"`
	ActiveKeys   int                  `json:"activeKeys"`
	Keys         keyCounts            `json:"keys"`
	TotalCredits credits.Credits      `json:"totalCredits"` // remaining across keys
	TotalSpent   credits.Credits      `json:"totalSpent"`
	TotalCalls   int64                `json:"totalCalls"`
	Usage        usageTotals          `json:"usage"`
	PerTool      map[string]toolStats `json:"perTool"`
	DenyReasons  map[string]int64     `json:"denyReasons"`
	Pricing      pricingSummary       `json:"pricing"`
	Truncated    bool                 `json:"truncated"`
}

func (a *API) status(w http.ResponseWriter, r *http.Request) error {
	q := queryOf(r)
	now := a.now()
	uf := store.UsageFilter{Limit: maxUsageScan, Desc: true}
	var err error
	if uf.Since, uf.Until, err = timeRange(q); err != nil {
		return err
	}
	kf := store.KeyFilter{Now: now}
	if ns := q.str("namespace"); ns != "" {
		if kf.Namespace, err = checkNamespace("namespace", ns); err != nil {
			return err
		}
		uf.Namespace = kf.Namespace
	}
	vs, _, err := a.st.ListKeys(r.Context(), kf)
	if err != nil {
		return err
	}
	recs, err := a.st.Usage(r.Context(), uf)
	if err != nil {
		return err
	}
	p := a.snapshot()
	out := statusResponse{Namespace: kf.Namespace, Pricing: pricingSummary{DefaultCreditsPerCall: p.DefaultPrice(),
		GlobalRateLimitPerMin: p.GlobalRateLimit(), ShadowMode: p.Shadow(), Tools: p.Pricing()}}
	for _, v := range vs {
		out.Keys.Total++
		switch keyStatus(v.Key, now) {
		case statusActive:
			out.Keys.Active++
		case statusSuspended:
			out.Keys.Suspended++
		case statusExpired:
			out.Keys.Expired++
		default:
			out.Keys.Revoked++
		}
		out.TotalCredits += v.Account.Balance
		out.TotalSpent += v.Account.Spent
		out.TotalCalls += v.Account.Calls
	}
	out.ActiveKeys = out.Keys.Active
	g := aggregateOf(recs)
	out.Usage, out.PerTool, out.DenyReasons, out.Truncated = g.totals, g.tools(), g.reasons, len(recs) == maxUsageScan
	return reply(w, r, http.StatusOK, out)
}
