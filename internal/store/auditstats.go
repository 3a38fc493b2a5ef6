package store

import (
	"context"
	"time"
)

// AuditSummary describes the audit events matching a filter.
type AuditSummary struct {
	Total     int64
	ByType    map[string]int64
	TopActors []ActorCount // most active first, at most AuditTopActors
	Oldest    time.Time    // zero when Total is 0
	Newest    time.Time
}

// ActorCount is how many events one actor caused.
type ActorCount struct {
	Actor string
	Count int64
}

// AuditTopActors bounds AuditSummary.TopActors.
const AuditTopActors = 20

// AuditCounter is implemented by stores that can count and summarize the
// audit trail without reading it all (optional; callers fall back to a
// bounded scan through Audit). Filters' Limit, AfterSeq and Desc are
// ignored except AfterSeq, which narrows the count.
type AuditCounter interface {
	CountAudit(ctx context.Context, f AuditFilter) (int64, error)
	SummarizeAudit(ctx context.Context, f AuditFilter) (AuditSummary, error)
}
