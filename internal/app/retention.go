package app

import (
	"context"
	"sync"
	"time"
)

// usagePruneEvery is how often the usage log's retention is enforced
// (also once at start).
const usagePruneEvery = time.Hour

// startUsageRetention enforces usageRetentionDays and usageMaxRecords in
// the background: at start and every usagePruneEvery. The store deletes in
// small steps, so charges keep flowing while a large backlog goes.
func (a *App) startUsageRetention(ctx context.Context) (stop func()) {
	maxAge, keep := a.cfg.UsageMaxAge(), a.cfg.UsageMaxRecordCount()
	if (maxAge <= 0 && keep <= 0) || a.cfg.DryRun {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(usagePruneEvery)
		defer tick.Stop()
		for {
			var before time.Time
			if maxAge > 0 {
				before = time.Now().Add(-maxAge)
			}
			start := time.Now()
			n, err := a.store.PruneUsage(ctx, before, keep)
			switch {
			case err != nil && ctx.Err() == nil:
				a.log.Warn("usage retention failed", "err", err, "deleted", n)
			case n > 0:
				a.log.Info("usage retention", "deleted", n, "max_age", maxAge, "max_records", keep,
					"took", time.Since(start).Round(time.Millisecond))
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}
