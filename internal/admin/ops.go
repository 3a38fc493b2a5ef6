package admin

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/paygate/paygate/internal/store"
)

// maxMaintenanceMessage bounds the operator's maintenance message.
const maxMaintenanceMessage = 500

// defaultMaintenanceMessage is shown when maintenance is switched on
// without a message.
const defaultMaintenanceMessage = "The server is under maintenance; try again later."

// opsRoutes steer the running gateway: maintenance mode and config reload.
func (a *API) opsRoutes() []Route {
	const tag = "operations"
	return []Route{
		{Method: "GET", Pattern: "/maintenance", Role: store.RoleViewer, Handler: a.getMaintenance, Doc: Doc{
			Tag: tag, Summary: "Maintenance mode status", Response: maintenanceView{},
		}},
		{Method: "POST", Pattern: "/maintenance", Role: store.RoleAdmin, Handler: a.setMaintenance, Doc: Doc{
			Tag: tag, Summary: "Switch maintenance mode on or off",
			Description: "While on, /mcp answers 503 with the message (and /ready 503) while the admin API stays up. " +
				"Audited as maintenance.enabled / maintenance.disabled. Not persisted: a restart ends it.",
			Request: maintenanceRequest{}, Response: maintenanceView{},
		}},
		{Method: "POST", Pattern: "/config/reload", Role: store.RoleAdmin, Handler: a.reloadConfig, Doc: Doc{
			Tag: tag, Summary: "Reload the config file's hot settings (pricing, rate limits, quotas, flags, CORS, headers)",
			Description: "Re-reads the file the gateway was started with (--config). The whole file is validated " +
				"first: a file with errors is refused with 400 and changes nothing. Keys that need a restart are " +
				"reported as skipped. configPath may only name that same file: reading an arbitrary path on the " +
				"server's disk on an API request is refused by design. Same as SIGHUP.",
			Request: reloadRequest{}, Response: reloadResponse{},
		}},
	}
}

type maintenanceRequest struct {
	Enabled *bool  `json:"enabled"` // required
	Message string `json:"message"`
}

type maintenanceView struct {
	Enabled bool       `json:"enabled"`
	Message string     `json:"message,omitempty"`
	Since   *time.Time `json:"since,omitempty"`
}

// maintenanceView reads the gateway's maintenance state.
func (a *API) maintenanceView() maintenanceView {
	msg := a.rt.Maintenance()
	if msg == nil {
		return maintenanceView{}
	}
	v := maintenanceView{Enabled: true, Message: *msg}
	if since := a.ops.since.Load(); since != nil {
		t := since.UTC()
		v.Since = &t
	}
	return v
}

func (a *API) getMaintenance(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, a.maintenanceView())
	return nil
}

func (a *API) setMaintenance(w http.ResponseWriter, r *http.Request) error {
	var req maintenanceRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Enabled == nil {
		return badField("enabled", "is required (true or false)")
	}
	msg := strings.TrimSpace(req.Message)
	switch {
	case !utf8.ValidString(msg) || strings.ContainsFunc(msg, func(c rune) bool { return c < 0x20 || c == 0x7f }):
		return badField("message", "must be printable text on one line")
	case utf8.RuneCountInString(msg) > maxMaintenanceMessage:
		return badField("message", "must be at most %d characters", maxMaintenanceMessage)
	case msg == "":
		msg = defaultMaintenanceMessage
	}
	a.ops.maintMu.Lock()
	was := a.rt.Maintenance() != nil
	if *req.Enabled {
		if !was {
			now := a.now()
			a.ops.since.Store(&now)
		}
		a.rt.SetMaintenance(&msg)
	} else {
		a.rt.SetMaintenance(nil)
		a.ops.since.Store(nil)
	}
	v := a.maintenanceView()
	a.ops.maintMu.Unlock()

	if *req.Enabled {
		a.audit(r, "maintenance.enabled", nil, msg, map[string]any{"message": msg, "wasEnabled": was})
		a.log.Info("maintenance mode on", "request_id", state(r).requestID, "actor", state(r).actor)
	} else {
		a.audit(r, "maintenance.disabled", nil, "maintenance mode off", map[string]any{"wasEnabled": was})
		a.log.Info("maintenance mode off", "request_id", state(r).requestID, "actor", state(r).actor)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

type reloadRequest struct {
	// ConfigPath may only name the file the gateway was started with.
	ConfigPath string `json:"configPath"`
}

type reloadResponse struct {
	OK       bool     `json:"ok"`
	Changed  []string `json:"changed"`
	Skipped  []string `json:"skipped"`
	Warnings []string `json:"warnings"`
	Message  string   `json:"message"`
}

func (a *API) reloadConfig(w http.ResponseWriter, r *http.Request) error {
	var req reloadRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.ConfigPath != "" && !samePath(req.ConfigPath, a.rt.ConfigFile) {
		return badField("configPath", "only the config file the gateway was started with can be reloaded "+
			"(omit configPath); to use another file, restart with --config")
	}
	res, err := a.rt.Reload()
	if err != nil {
		a.audit(r, "config.reload_failed", nil, "config reload refused; nothing changed", nil)
		if errors.Is(err, ErrNoConfigFile) {
			return newError(CodeConflict, "", "%v", ErrNoConfigFile)
		}
		// The errors name the operator's own file: say what is wrong.
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Err: err,
			Message: "config file refused, nothing changed: " + oneLine(err.Error())}
	}
	resp := reloadResponse{OK: true, Changed: orEmpty(res.Changed), Skipped: orEmpty(res.Skipped), Warnings: orEmpty(res.Warnings)}
	resp.Message = fmt.Sprintf("Config reloaded: %d fields updated", len(resp.Changed))
	if len(resp.Skipped) > 0 {
		resp.Message += fmt.Sprintf(", %d need a restart", len(resp.Skipped))
	}
	a.audit(r, "config.reloaded", nil, resp.Message, map[string]any{"changed": resp.Changed, "skipped": resp.Skipped})
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// samePath reports whether two paths name the same file lexically. It
// never touches the disk: the first path comes from a request.
func samePath(given, configured string) bool {
	if configured == "" {
		return false
	}
	g, err1 := filepath.Abs(given)
	c, err2 := filepath.Abs(configured)
	return err1 == nil && err2 == nil && g == c
}

// oneLine joins a multi-line error (errors.Join) with "; ".
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' }), "; ")
}
