package admin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/store"
)

func (a *API) adminKeyRoutes() []Route {
	return []Route{
		{Method: "POST", Pattern: "/admin/keys", Role: store.RoleSuperAdmin, Handler: a.createAdminKey, Doc: Doc{
			Tag: "admin keys", Summary: "Create an admin key",
			Description: "role is super_admin, admin (default) or viewer. The secret (ak_...) is in \"key\", shown this once.",
			Request:     adminKeyRequest{}, Response: createdAdminKey{}, Status: http.StatusCreated,
		}},
		{Method: "GET", Pattern: "/admin/keys", Role: store.RoleSuperAdmin, Handler: a.listAdminKeys, Doc: Doc{
			Tag: "admin keys", Summary: "List admin keys (masked)", Response: []adminKeyView{},
		}},
		{Method: "POST", Pattern: "/admin/keys/revoke", Role: store.RoleSuperAdmin, Handler: a.revokeAdminKey, Doc: Doc{
			Tag: "admin keys", Summary: "Revoke an admin key",
			Description: "By id (adm_...) or secret. The key making the request and the last active super_admin " +
				"cannot be revoked.",
			Request: adminRevokeRequest{}, Response: adminKeyView{},
		}},
	}
}

type adminKeyRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

type adminKeyView struct {
	ID        string  `json:"id"`
	Key       string  `json:"key"` // masked, except in the creation response
	KeyMasked string  `json:"keyMasked"`
	Name      string  `json:"name"`
	Role      string  `json:"role"`
	Active    bool    `json:"active"`
	Revoked   bool    `json:"revoked"`
	CreatedAt string  `json:"createdAt"`
	CreatedBy string  `json:"createdBy,omitempty"`
	RevokedAt *string `json:"revokedAt,omitempty"`
	LastUsed  *string `json:"lastUsedAt,omitempty"`
	Message   string  `json:"message,omitempty"`
}

type createdAdminKey = adminKeyView

func viewAdminKey(k *store.AdminKey) adminKeyView {
	mask := k.Prefix + "..." + k.Suffix
	return adminKeyView{ID: k.ID, Key: mask, KeyMasked: mask, Name: k.Name, Role: string(k.Role), Active: !k.Revoked,
		Revoked: k.Revoked, CreatedAt: fmtTime(k.CreatedAt), CreatedBy: k.CreatedBy, RevokedAt: optTime(k.RevokedAt),
		LastUsed: optTime(k.LastUsed)}
}

func (a *API) createAdminKey(w http.ResponseWriter, r *http.Request) error {
	var req adminKeyRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	name, err := checkText("name", req.Name, maxNameLen)
	if err != nil {
		return err
	}
	role := store.AdminRole(req.Role)
	if role == "" {
		role = store.RoleAdmin
	}
	if roleRank(role) == 0 {
		return badField("role", "must be super_admin, admin or viewer")
	}
	rc := state(r)
	var (
		ak  *store.AdminKey
		sec keys.Secret
	)
	for attempt := 0; ; attempt++ {
		if sec, err = keys.GenerateAdmin(a.rand); err != nil {
			return err
		}
		id, err := keys.NewAdminID(a.rand)
		if err != nil {
			return err
		}
		ak = &store.AdminKey{ID: id, Hash: sec.Hash, Prefix: sec.Prefix, Suffix: sec.Suffix, Name: name, Role: role,
			CreatedAt: a.now().UTC(), CreatedBy: rc.actor}
		err = a.st.CreateAdminKey(r.Context(), ak)
		if errors.Is(err, store.ErrAlreadyExists) && attempt < 3 {
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	a.audit(r, "admin_key.created", nil, "admin key created: "+name,
		map[string]any{"adminKeyId": ak.ID, "adminKeyMasked": sec.String(), "role": string(role), "name": name})
	v := viewAdminKey(ak)
	v.Key = sec.Plain
	v.Message = "Admin key created; " + shownOnce
	return reply(w, r, http.StatusCreated, v)
}

func (a *API) listAdminKeys(w http.ResponseWriter, r *http.Request) error {
	list, err := a.st.ListAdminKeys(r.Context())
	if err != nil {
		return err
	}
	out := make([]adminKeyView, len(list))
	for i, k := range list {
		out[i] = viewAdminKey(k)
	}
	return reply(w, r, http.StatusOK, out)
}

type adminRevokeRequest struct {
	ID  string `json:"id"`  // adm_...
	Key string `json:"key"` // an id or the secret (ak_...)
}

func (a *API) revokeAdminKey(w http.ResponseWriter, r *http.Request) error {
	var req adminRevokeRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	ref, field := strings.TrimSpace(req.ID), "id"
	switch {
	case ref != "" && req.Key != "":
		return badRequest("set id or key, not both")
	case ref == "":
		ref, field = strings.TrimSpace(req.Key), "key"
	}
	if ref == "" {
		return badField("id", "is required (an admin key id, or key: the secret)")
	}
	// One revocation at a time, so two super_admins cannot revoke each
	// other and leave none. (Across gateway instances sharing a store
	// this guard is per instance.)
	a.adminMu.Lock()
	defer a.adminMu.Unlock()
	list, err := a.st.ListAdminKeys(r.Context())
	if err != nil {
		return err
	}
	var target *store.AdminKey
	h := keys.Hash(ref)
	activeSupers := 0
	for _, k := range list {
		if k.ID == ref || strings.HasPrefix(ref, keys.AdminKeyPrefix) && keys.Equal(k.Hash, h) {
			target = k
		}
		if !k.Revoked && k.Role == store.RoleSuperAdmin {
			activeSupers++
		}
	}
	rc := state(r)
	switch {
	case target == nil:
		return notFound(field, "admin key")
	case target.ID == rc.admin.ID:
		return conflict(field, "an admin key cannot revoke itself")
	case target.Revoked:
		return conflict(field, "admin key %s is already revoked", target.ID)
	case target.Role == store.RoleSuperAdmin && activeSupers <= 1:
		return conflict(field, "admin key %s is the last active super_admin", target.ID)
	}
	now := a.now().UTC()
	updated, err := a.st.UpdateAdminKey(r.Context(), target.ID, func(k *store.AdminKey) error {
		if k.Revoked {
			return conflict(field, "admin key %s is already revoked", k.ID)
		}
		k.Revoked, k.RevokedAt = true, now
		return nil
	})
	if err != nil {
		return err
	}
	v := viewAdminKey(updated)
	a.audit(r, "admin_key.revoked", nil, "admin key revoked: "+updated.Name,
		map[string]any{"adminKeyId": updated.ID, "adminKeyMasked": v.KeyMasked, "role": v.Role})
	v.Message = "Admin key revoked"
	return reply(w, r, http.StatusOK, v)
}
