package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/paygate/paygate/internal/backup"
	"github.com/paygate/paygate/internal/store"
)

// maxRestoreBody bounds a backup uploaded to POST /admin/restore. A
// backup is about 250 bytes per ledger line; larger stores restore a
// stopped instance with "paygate restore".
const maxRestoreBody = 512 << 20

func (a *API) backupRoutes() []Route {
	return []Route{
		{Method: "GET", Pattern: "/admin/backup", Role: store.RoleSuperAdmin, Handler: a.backup, Doc: Doc{
			Tag: "backup", Summary: "Download a consistent backup of the state",
			Description: "A versioned JSON document: keys (with their secret hashes; secrets are never stored), accounts, " +
				"the whole ledger, admin keys (hashed) and settings, taken at one instant so the ledger reconciles " +
				"with the balances, plus a SHA-256 checksum over the RFC 8785 form of its data. include=audit adds " +
				"the audit trail.",
			Query:    []Param{{Name: "include", Type: "string", Enum: []string{"audit"}, Description: "extra parts to include"}},
			Response: backupDocument{},
		}},
		{Method: "POST", Pattern: "/admin/restore", Role: store.RoleSuperAdmin, Handler: a.restore, MaxBody: maxRestoreBody, Doc: Doc{
			Tag: "backup", Summary: "Restore state from a backup",
			Description: "The body is a file from GET /admin/backup or paygate backup. It is verified in full first (format, " +
				"version, checksum, every record, the ledger reconciling, conflicts with this store); any problem " +
				"answers 400 and changes nothing. mode=merge (default) adds keys, admin keys and settings this store " +
				"lacks; mode=overwrite also replaces existing keys' configuration and balances (one adjustment line " +
				"each; a key revoked or rotated since the backup stays so); mode=full replaces everything, keeping " +
				"the admin key making the request. dryRun=true reports what would change.",
			Query: []Param{
				{Name: "mode", Type: "string", Enum: []string{"merge", "overwrite", "full"}},
				{Name: "dryRun", Type: "boolean", Description: "verify and report without changing anything"},
			},
			Request: backupDocument{}, Response: restoreResponse{},
		}},
	}
}

// backupDocument documents the backup file (package backup writes it).
type backupDocument struct {
	Format        string         `json:"format"`
	Version       int            `json:"version"`
	CreatedAt     string         `json:"createdAt"`
	ServerVersion string         `json:"serverVersion"`
	Store         string         `json:"store"`
	Data          map[string]any `json:"data"`
	Checksum      string         `json:"checksum"`
}

func (a *API) version() string {
	if a.rt != nil {
		return a.rt.Version
	}
	return ""
}

func (a *API) backup(w http.ResponseWriter, r *http.Request) error {
	var opts store.SnapshotOptions
	if inc := queryOf(r).str("include"); inc != "" {
		for _, part := range strings.Split(inc, ",") {
			switch strings.TrimSpace(part) {
			case "audit":
				opts.Audit = true
			case "":
			default:
				return badField("include", "%q is not a part a backup can include (audit)", truncate(part, 32))
			}
		}
	}
	sn, ok := a.st.(store.Snapshotter)
	if !ok {
		return newError(CodeUnavailable, "", "%v", store.ErrRestoreUnsupported)
	}
	snap, err := sn.Snapshot(r.Context(), opts)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="paygate-backup-`+snap.TakenAt.UTC().Format("20060102-150405")+`.json"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	info, err := backup.Encode(w, snap, backup.Meta{ServerVersion: a.version(), Store: storeKind(a.st)})
	if err != nil {
		return err // headers are out: the adapter logs it
	}
	a.audit(r, "backup.created", nil, "backup downloaded", map[string]any{
		"keys": info.Stats.Keys, "ledgerEntries": info.Stats.LedgerEntries, "auditEvents": info.Stats.AuditEvents,
		"checksum": info.Checksum, "includeAudit": opts.Audit,
	})
	return nil
}

// storeKind names the store in backups.
func storeKind(st store.Store) string {
	switch t := strings.TrimPrefix(strings.ToLower(fmt.Sprintf("%T", st)), "*"); {
	case strings.HasPrefix(t, "sqlite."):
		return "sqlite"
	case strings.Contains(t, "redis"):
		return "redis"
	}
	return ""
}

type restoreKeys struct {
	Imported    int `json:"imported"`
	Overwritten int `json:"overwritten"`
	Skipped     int `json:"skipped"`
	Removed     int `json:"removed"`
}

type restoreAdminKeys struct {
	Imported int `json:"imported"`
	Skipped  int `json:"skipped"`
}

type restoreResults struct {
	Keys          restoreKeys      `json:"keys"`
	LedgerEntries int              `json:"ledgerEntries"`
	Adjustments   int              `json:"adjustments"`
	AdminKeys     restoreAdminKeys `json:"adminKeys"`
	Settings      int              `json:"settings"`
	AuditEvents   int              `json:"auditEvents"`
}

type restoredBackup struct {
	Version       int    `json:"version"`
	CreatedAt     string `json:"createdAt"`
	ServerVersion string `json:"serverVersion,omitempty"`
	Checksum      string `json:"checksum"`
}

type restoreResponse struct {
	Success    bool           `json:"success"`
	Mode       string         `json:"mode"`
	DryRun     bool           `json:"dryRun"`
	Backup     restoredBackup `json:"backup"`
	Results    restoreResults `json:"results"`
	Warnings   []string       `json:"warnings"`
	RestoredAt *string        `json:"restoredAt"` // null on a dry run
	Message    string         `json:"message"`
}

func (a *API) restore(w http.ResponseWriter, r *http.Request) error {
	q := queryOf(r)
	mode, err := q.oneOf("mode", string(store.RestoreMerge), "merge", "overwrite", "full")
	if err != nil {
		return err
	}
	dry, err := q.boolean("dryRun")
	if err != nil {
		return err
	}
	rs, ok := a.st.(store.Restorer)
	if !ok {
		return newError(CodeUnavailable, "", "%v", store.ErrRestoreUnsupported)
	}
	snap, info, err := backup.Decode(r.Body)
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb):
		return err
	case errors.Is(err, backup.ErrInvalid):
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: "backup", Err: err,
			Message: "backup refused, nothing was changed: " + strings.TrimPrefix(err.Error(), "invalid backup: ")}
	case err != nil:
		return badField("backup", "reading the backup: %v", err)
	}
	rc := state(r)
	res, err := rs.Restore(r.Context(), snap, store.RestoreOptions{
		Mode: store.RestoreMode(mode), DryRun: dry, KeepAdminKey: rc.admin.ID, Now: a.now(),
		Meta: rc.meta("restore (" + mode + ") of backup " + info.Checksum),
	})
	if errors.Is(err, store.ErrInvalid) {
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: "backup", Err: err,
			Message: "backup refused, nothing was changed: " + strings.TrimPrefix(strings.TrimPrefix(err.Error(), "restore: "), "invalid snapshot: ")}
	}
	if err != nil {
		return err
	}
	out := restoreResponse{
		Success: true, Mode: mode, DryRun: dry,
		Backup: restoredBackup{Version: info.Version, CreatedAt: fmtTime(info.CreatedAt), ServerVersion: info.ServerVersion,
			Checksum: info.Checksum},
		Results: restoreResults{
			Keys: restoreKeys{Imported: res.KeysAdded, Overwritten: res.KeysOverwritten, Skipped: res.KeysSkipped,
				Removed: res.KeysRemoved},
			LedgerEntries: res.LedgerEntries, Adjustments: res.Adjustments,
			AdminKeys: restoreAdminKeys{Imported: res.AdminKeysAdded, Skipped: res.AdminKeysSkipped},
			Settings:  res.SettingsRestored, AuditEvents: res.AuditRestored,
		},
		Warnings: nonNil(res.Warnings),
	}
	if dry {
		out.Message = "Dry run: the backup is valid; nothing was changed"
		return reply(w, r, http.StatusOK, out)
	}
	out.RestoredAt = optTime(a.now())
	out.Message = "Backup restored (" + mode + ")"
	a.keyChanged(res.ChangedKeys...)
	a.audit(r, "backup.restored", nil, "backup restored ("+mode+")", map[string]any{
		"mode": mode, "checksum": info.Checksum, "backupCreatedAt": fmtTime(info.CreatedAt),
		"keysImported": res.KeysAdded, "keysOverwritten": res.KeysOverwritten, "keysSkipped": res.KeysSkipped,
		"keysRemoved": res.KeysRemoved, "ledgerEntries": res.LedgerEntries, "adjustments": res.Adjustments,
	})
	return reply(w, r, http.StatusOK, out)
}
