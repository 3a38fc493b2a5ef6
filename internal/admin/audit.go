package admin

import (
	"cmp"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/audit"
	"github.com/paygate/paygate/internal/store"
)

// Auditor is the audit trail as the API uses it: it records events (to
// the store and to live subscribers) and serves subscriptions to
// /admin/events. *audit.Recorder implements it.
type Auditor interface {
	AppendAudit(evs ...store.AuditEvent)
	Subscribe(types []string) (*audit.Subscription, error)
	Settings() audit.Settings
}

// appendAudit records events through the trail when there is one, else
// straight into the store.
func (a *API) appendAudit(evs ...store.AuditEvent) {
	if a.trail != nil {
		a.trail.AppendAudit(evs...)
		return
	}
	a.st.AppendAudit(evs...)
}

// Bounds of the audit queries.
const (
	maxAuditPage   = 1000    // GET /audit limit
	maxAuditOffset = 100_000 // GET /audit offset
	maxAuditExport = 100_000 // GET /audit/export limit; page on with afterSeq
	maxAuditScan   = 100_000 // events /audit/stats reads when the store cannot count
	maxAuditTypes  = 50
)

func (a *API) auditRoutes() []Route {
	filters := []Param{
		{Name: "types", Type: "string", Description: "comma-separated event types, e.g. key.created,gate.deny"},
		{Name: "actor", Type: "string", Description: "exact actor: an admin or API key mask, \"system\", \"anonymous\""},
		{Name: "since", Type: "string", Description: "RFC 3339; events at or after"},
		{Name: "until", Type: "string", Description: "RFC 3339; events before"},
	}
	return []Route{
		{Method: "GET", Pattern: "/audit", Role: store.RoleViewer, Handler: a.auditQuery, Doc: Doc{
			Tag: "audit", Summary: "Query the audit trail, newest first",
			Description: "The trail is durable: it survives restarts. Gate decisions appear as gate.deny (every denial, " +
				"rate-limited per key when one floods, the rest counted in gate.deny_summary) and gate.allow_summary " +
				"(per key and interval; see auditGateAllows).",
			Query: append(slices.Clone(filters),
				Param{Name: "limit", Type: "integer", Description: "1 to 1000 (default 100)"},
				Param{Name: "offset", Type: "integer", Description: "events to skip, 0 to 100000 (default 0)"}),
			Response: auditPage{},
		}},
		{Method: "GET", Pattern: "/audit/export", Role: store.RoleViewer, Handler: a.auditExport, Doc: Doc{
			Tag: "audit", Summary: "Export the audit trail (JSON or CSV), oldest first",
			Query: append(slices.Clone(filters),
				Param{Name: "format", Type: "string", Enum: []string{"json", "csv"}},
				Param{Name: "limit", Type: "integer", Description: "1 to 100000 (default 10000)"},
				Param{Name: "afterSeq", Type: "integer", Description: "continue after this event id (paging)"}),
			Response: auditExportResponse{}, CSV: true,
		}},
		{Method: "GET", Pattern: "/audit/stats", Role: store.RoleViewer, Handler: a.auditStats, Doc: Doc{
			Tag: "audit", Summary: "Audit trail statistics: counts by type and actor, time range, retention",
			Response: auditStatsResponse{},
		}},
	}
}

// auditEvent is one audit event in a response.
type auditEvent struct {
	ID        int64          `json:"id"`
	Timestamp string         `json:"timestamp"`
	Type      string         `json:"type"`
	Actor     string         `json:"actor"`
	RequestID string         `json:"requestId,omitempty"`
	KeyMasked string         `json:"keyMasked,omitempty"`
	Message   string         `json:"message"`
	Metadata  map[string]any `json:"metadata"`
}

func auditEventOf(e *store.AuditEvent) auditEvent {
	m := e.Metadata
	if m == nil {
		m = map[string]any{}
	}
	return auditEvent{ID: e.Seq, Timestamp: fmtTime(e.Time), Type: e.Type, Actor: e.Actor, RequestID: e.RequestID,
		KeyMasked: e.KeyMask, Message: e.Message, Metadata: m}
}

type auditPage struct {
	Total  int64        `json:"total"`
	Offset int          `json:"offset"`
	Limit  int          `json:"limit"`
	Events []auditEvent `json:"events"`
}

// eventType is the shape of an audit event type: dot-separated
// lower-case words.
var eventType = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$`)

// auditTypes reads the types parameter.
func auditTypes(q query) ([]string, error) {
	s := q.str("types")
	if s == "" {
		return nil, nil
	}
	var out []string
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if len(t) > 64 || !eventType.MatchString(t) {
			return nil, badField("types", "%q is not an event type (like key.created or gate.deny)", truncate(t, 64))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) > maxAuditTypes {
		return nil, badField("types", "at most %d types", maxAuditTypes)
	}
	return out, nil
}

// auditFilter reads the filters every audit route shares.
func auditFilter(q query) (store.AuditFilter, error) {
	var f store.AuditFilter
	var err error
	if f.Types, err = auditTypes(q); err != nil {
		return f, err
	}
	if f.Actor = q.str("actor"); len(f.Actor) > 256 {
		return f, badField("actor", "at most 256 characters")
	}
	if f.Since, f.Until, err = timeRange(q); err != nil {
		return f, err
	}
	return f, nil
}

func (a *API) auditQuery(w http.ResponseWriter, r *http.Request) error {
	q := queryOf(r)
	f, err := auditFilter(q)
	if err != nil {
		return err
	}
	limit, err := q.intIn("limit", 100, 1, maxAuditPage)
	if err != nil {
		return err
	}
	offset, err := q.intIn("offset", 0, 0, maxAuditOffset)
	if err != nil {
		return err
	}
	f.Desc, f.Limit = true, offset+limit
	evs, err := a.st.Audit(r.Context(), f)
	if err != nil {
		return err
	}
	evs = evs[min(offset, len(evs)):]
	f.Limit, f.Desc = 0, false
	var total int64
	if c, ok := a.st.(store.AuditCounter); ok {
		total, err = c.CountAudit(r.Context(), f)
	} else {
		total, err = a.scanCount(r, f) // a store that cannot count: a bounded scan
	}
	if err != nil {
		return err
	}
	out := auditPage{Total: total, Offset: offset, Limit: limit, Events: make([]auditEvent, len(evs))}
	for i := range evs {
		out.Events[i] = auditEventOf(&evs[i])
	}
	return reply(w, r, http.StatusOK, out)
}

// scanCount counts the events matching f by reading at most maxAuditScan
// of them, for stores without store.AuditCounter.
func (a *API) scanCount(r *http.Request, f store.AuditFilter) (int64, error) {
	f.Limit = maxAuditScan
	evs, err := a.st.Audit(r.Context(), f)
	return int64(len(evs)), err
}

type auditExportResponse struct {
	Count     int          `json:"count"`
	Limit     int          `json:"limit"`
	Truncated bool         `json:"truncated"` // more events match: continue with afterSeq=lastSeq
	LastSeq   int64        `json:"lastSeq,omitempty"`
	Events    []auditEvent `json:"events"`
}

func (a *API) auditExport(w http.ResponseWriter, r *http.Request) error {
	q := queryOf(r)
	format, err := q.oneOf("format", "json", "json", "csv")
	if err != nil {
		return err
	}
	f, err := auditFilter(q)
	if err != nil {
		return err
	}
	limit, err := q.intIn("limit", 10_000, 1, maxAuditExport)
	if err != nil {
		return err
	}
	after, err := q.intIn("afterSeq", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	f.AfterSeq, f.Limit = int64(after), limit+1 // one more tells whether the page is complete
	evs, err := a.st.Audit(r.Context(), f)
	if err != nil {
		return err
	}
	truncated := len(evs) > limit
	evs = evs[:min(len(evs), limit)]
	a.audit(r, "audit.exported", nil, "audit trail exported", map[string]any{"format": format, "count": len(evs)})
	if format == "csv" {
		header := []string{"id", "timestamp", "type", "actor", "message", "requestId", "keyMasked", "metadata"}
		name := "paygate-audit-" + a.now().UTC().Format("20060102-150405") + ".csv"
		return writeCSV(w, name, header, func(emit func([]string) error) error {
			for i := range evs {
				e := auditEventOf(&evs[i])
				meta, err := json.Marshal(e.Metadata)
				if err != nil {
					meta = []byte("{}")
				}
				if err := emit([]string{fmtInt(e.ID), e.Timestamp, csvText(e.Type), csvText(e.Actor), csvText(e.Message),
					csvText(e.RequestID), csvText(e.KeyMasked), csvText(string(meta))}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	out := auditExportResponse{Count: len(evs), Limit: limit, Truncated: truncated, Events: make([]auditEvent, len(evs))}
	for i := range evs {
		out.Events[i] = auditEventOf(&evs[i])
	}
	if len(evs) > 0 {
		out.LastSeq = evs[len(evs)-1].Seq
	}
	return reply(w, r, http.StatusOK, out)
}

type actorCount struct {
	Actor string `json:"actor"`
	Count int64  `json:"count"`
}

type auditRetention struct {
	MaxAgeDays             int64  `json:"maxAgeDays"` // 0: no age limit
	MaxEvents              int    `json:"maxEvents"`  // 0: no count limit
	PruneIntervalSeconds   int64  `json:"pruneIntervalSeconds"`
	GateAllows             string `json:"gateAllows"`
	SummaryIntervalSeconds int64  `json:"summaryIntervalSeconds"`
	DenyPerSecond          int    `json:"denyPerSecondPerKey"` // -1: every denial
}

type auditStatsResponse struct {
	TotalEvents     int64            `json:"totalEvents"`
	OldestEvent     *string          `json:"oldestEvent"`
	NewestEvent     *string          `json:"newestEvent"`
	EventsByType    map[string]int64 `json:"eventsByType"`
	TopActors       []actorCount     `json:"topActors"`
	EventsLastHour  int64            `json:"eventsLastHour"`
	EventsLast24h   int64            `json:"eventsLast24h"`
	Retention       *auditRetention  `json:"retention"` // null without a recorder
	LiveSubscribers *int             `json:"liveSubscribers,omitempty"`
	Truncated       bool             `json:"truncated"` // counted from the newest 100000 events only
}

func (a *API) auditStats(w http.ResponseWriter, r *http.Request) error {
	now := a.now()
	out := auditStatsResponse{EventsByType: map[string]int64{}, TopActors: []actorCount{}}
	if c, ok := a.st.(store.AuditCounter); ok {
		sum, err := c.SummarizeAudit(r.Context(), store.AuditFilter{})
		if err != nil {
			return err
		}
		out.TotalEvents, out.EventsByType = sum.Total, sum.ByType
		out.OldestEvent, out.NewestEvent = optTime(sum.Oldest), optTime(sum.Newest)
		for _, ac := range sum.TopActors {
			out.TopActors = append(out.TopActors, actorCount{ac.Actor, ac.Count})
		}
		if out.EventsLastHour, err = c.CountAudit(r.Context(), store.AuditFilter{Since: now.Add(-time.Hour)}); err != nil {
			return err
		}
		if out.EventsLast24h, err = c.CountAudit(r.Context(), store.AuditFilter{Since: now.Add(-24 * time.Hour)}); err != nil {
			return err
		}
	} else if err := a.scanAuditStats(r, now, &out); err != nil {
		return err
	}
	if a.trail != nil {
		s := a.trail.Settings()
		out.Retention = &auditRetention{MaxAgeDays: int64(s.MaxAge / (24 * time.Hour)), MaxEvents: s.MaxEvents,
			PruneIntervalSeconds: int64(s.PruneInterval / time.Second), GateAllows: s.GateAllows,
			SummaryIntervalSeconds: int64(s.SummaryInterval / time.Second), DenyPerSecond: s.DenyPerSecond}
		if n, ok := a.trail.(interface{ Subscribers() int }); ok {
			live := n.Subscribers()
			out.LiveSubscribers = &live
		}
	}
	return reply(w, r, http.StatusOK, out)
}

// scanAuditStats computes the stats from the newest events, for stores
// that cannot count.
func (a *API) scanAuditStats(r *http.Request, now time.Time, out *auditStatsResponse) error {
	evs, err := a.st.Audit(r.Context(), store.AuditFilter{Desc: true, Limit: maxAuditScan})
	if err != nil {
		return err
	}
	out.Truncated = len(evs) == maxAuditScan
	actors := map[string]int64{}
	for i := range evs {
		e := &evs[i]
		out.TotalEvents++
		out.EventsByType[e.Type]++
		actors[e.Actor]++
		if !e.Time.Before(now.Add(-time.Hour)) {
			out.EventsLastHour++
		}
		if !e.Time.Before(now.Add(-24 * time.Hour)) {
			out.EventsLast24h++
		}
	}
	if n := len(evs); n > 0 {
		out.NewestEvent, out.OldestEvent = optTime(evs[0].Time), optTime(evs[n-1].Time)
	}
	for actor, n := range actors {
		out.TopActors = append(out.TopActors, actorCount{actor, n})
	}
	slices.SortFunc(out.TopActors, func(x, y actorCount) int {
		if c := cmp.Compare(y.Count, x.Count); c != 0 {
			return c
		}
		return strings.Compare(x.Actor, y.Actor)
	})
	out.TopActors = out.TopActors[:min(len(out.TopActors), store.AuditTopActors)]
	return nil
}
