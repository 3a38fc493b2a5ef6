package gateway

import "github.com/paygate/paygate/internal/store"

// Auditor receives every gate decision for the audit trail, as the usage
// record the pipeline wrote for it (package audit samples them: every
// denial, allowed calls summarized per key). It must not block. The
// record is passed by value so the hot path does not allocate for it.
type Auditor interface {
	Gate(rec store.UsageRecord)
}
