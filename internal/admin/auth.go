package admin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/store"
)

// authorize authenticates the request for rt and checks its role. Failed
// and refused admin requests leave an audit event.
func (a *API) authorize(r *http.Request, rt *Route, rc *reqCtx) error {
	switch rt.Role {
	case RolePublic, RoleGateway:
		return nil
	case RoleAPIKey:
		return a.authAPIKey(r, rc)
	}
	presented := r.Header.Get("X-Admin-Key")
	if presented == "" {
		a.auditAuth(r, rc, "admin.auth_failed", "anonymous", "missing X-Admin-Key", nil)
		return newError(CodeUnauthorized, "", "missing X-Admin-Key header")
	}
	ak, err := a.st.LookupAdminHash(r.Context(), keys.Hash(presented))
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && ak.Revoked:
		a.auditAuth(r, rc, "admin.auth_failed", keys.Mask(presented), "invalid admin key", nil)
		return newError(CodeUnauthorized, "", "invalid admin key")
	case err != nil:
		return err
	}
	rc.admin = ak
	rc.actor = ak.Prefix + "..." + ak.Suffix
	if roleRank(ak.Role) < roleRank(rt.Role) {
		a.auditAuth(r, rc, "admin.forbidden", rc.actor, "role "+string(ak.Role)+" may not use this route",
			map[string]any{"role": string(ak.Role), "required": string(rt.Role), "adminKeyId": ak.ID})
		return newError(CodeForbidden, "", "this route requires role %s; this admin key has role %s", rt.Role, ak.Role)
	}
	return nil
}

// authAPIKey authenticates an API key holder (X-API-Key, else Bearer).
func (a *API) authAPIKey(r *http.Request, rc *reqCtx) error {
	secret := apiCredential(r)
	if secret == "" {
		return newError(CodeUnauthorized, "", "missing API key: send X-API-Key or Authorization: Bearer")
	}
	k, err := a.st.LookupHash(r.Context(), keys.Hash(secret))
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && k.Revoked:
		return newError(CodeUnauthorized, "", "invalid API key")
	case err != nil:
		return err
	}
	rc.apiKey = k
	rc.actor = k.Mask()
	return nil
}

// apiCredential returns the API key a request presents: X-API-Key first,
// then "Authorization: Bearer" (the gateway's rule).
func apiCredential(r *http.Request) string {
	if k := r.Header.Get("X-API-Key"); k != "" {
		return strings.TrimSpace(k)
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// auditAuth records a failed or refused admin request.
func (a *API) auditAuth(r *http.Request, rc *reqCtx, typ, actor, msg string, meta map[string]any) {
	if meta == nil {
		meta = map[string]any{}
	}
	meta["method"] = r.Method
	meta["path"] = r.URL.Path
	a.appendAudit(store.AuditEvent{
		Time: a.now(), Type: typ, Actor: actor, RequestID: rc.requestID, Message: msg, Metadata: meta,
	})
}

// audit records a successful write. target may be nil.
func (a *API) audit(r *http.Request, typ string, target *store.Key, msg string, meta map[string]any) {
	rc := state(r)
	ev := store.AuditEvent{Time: a.now(), Type: typ, Actor: rc.actor, RequestID: rc.requestID, Message: msg, Metadata: meta}
	if target != nil {
		ev.KeyMask = target.Mask()
		if ev.Metadata == nil {
			ev.Metadata = map[string]any{}
		}
		ev.Metadata["keyId"] = target.ID
		ev.Metadata["keyMasked"] = target.Mask()
	}
	a.appendAudit(ev)
}
