package app

import (
	"net/http"
	"strings"

	"github.com/paygate/paygate/internal/admin"
	"github.com/paygate/paygate/internal/policy"
)

// mountAPI mounts the admin API (and the API-key holder routes) on mux and
// records its patterns for metrics labels.
func (a *App) mountAPI(mux *http.ServeMux, patterns map[string]bool) {
	api := admin.New(admin.Options{
		Store:   a.store,
		Policy:  func() *policy.Snapshot { return a.gw.Rules().Policy },
		Limiter: a.limiter,
		Logger:  a.log,
		MaxBody: int64(a.cfg.MaxBodyBytes),
	})
	api.Mount(mux)
	for _, r := range api.Routes() {
		patterns[strings.TrimSpace(r.Pattern)] = true
	}
}
