package app

import (
	"context"
	"sync"

	"github.com/paygate/paygate/internal/audit"
)

// startAudit creates the audit recorder (the trail the admin API and the
// gateway write through, and /admin/events reads) from the config, and
// runs its summaries and retention (at once, then periodically) until
// the returned stop is called. stop writes the last gate summaries; call
// it before the store closes.
func (a *App) startAudit(ctx context.Context) (stop func()) {
	cfg := a.cfg
	a.audit = audit.New(audit.Options{
		Store:           a.store,
		Logger:          a.log,
		GateAllows:      cfg.AuditAllowMode(),
		SummaryInterval: cfg.AuditInterval(),
		MaxAge:          cfg.AuditMaxAge(),
		MaxEvents:       cfg.AuditMaxEventCount(),
	})
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.audit.Run(ctx)
	}()
	return func() {
		cancel()
		wg.Wait()
		a.audit.Close()
	}
}
