package app

import "net/http"

// mountAPI mounts the admin and public HTTP API on mux.
func (a *App) mountAPI(mux *http.ServeMux, patterns map[string]bool) {}
