package admin

import (
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/store"
)

func (a *API) lifecycleRoutes() []Route {
	return []Route{
		{Method: "POST", Pattern: "/keys/revoke", Role: store.RoleAdmin, Handler: a.revokeKey, Doc: Doc{
			Tag: "keys", Summary: "Revoke an API key (permanent)", Request: keyRef{}, Response: stateResponse{},
		}},
		{Method: "POST", Pattern: "/keys/suspend", Role: store.RoleAdmin, Handler: a.suspendKey, Doc: Doc{
			Tag: "keys", Summary: "Suspend an API key (reversible)",
			Description: "Suspended keys are denied at the gate; admin operations still work on them.",
			Request:     suspendRequest{}, Response: stateResponse{},
		}},
		{Method: "POST", Pattern: "/keys/resume", Role: store.RoleAdmin, Handler: a.resumeKey, Doc: Doc{
			Tag: "keys", Summary: "Resume a suspended API key", Request: keyRef{}, Response: stateResponse{},
		}},
		{Method: "POST", Pattern: "/keys/rotate", Role: store.RoleAdmin, Handler: a.rotateKey, Doc: Doc{
			Tag: "keys", Summary: "Rotate an API key's secret",
			Description: "The old secret stops working at once; id, credits, counters and configuration stay. " +
				"The new secret is in \"newKey\", shown this once.",
			Request: keyRef{}, Response: rotateResponse{},
		}},
		{Method: "POST", Pattern: "/keys/clone", Role: store.RoleAdmin, Handler: a.cloneKey, Doc: Doc{
			Tag: "keys", Summary: "Clone an API key",
			Description: "A new key with the source's configuration (ACL, expiry, quota, tags, IP allowlist, namespace, " +
				"spending limit, rate limit) and fresh counters. Credits default to the source's balance (minted, not " +
				"moved). The alias is not copied. The new secret is in \"key\", shown this once.",
			Request: cloneRequest{}, Response: cloneResponse{}, Status: http.StatusCreated,
		}},
	}
}

// keyRef names one key: its id, secret or alias.
type keyRef struct {
	Key string `json:"key"`
}

// stateResponse answers revoke, suspend and resume.
type stateResponse struct {
	Message   string `json:"message"`
	ID        string `json:"id"`
	KeyMasked string `json:"keyMasked"`
	Status    string `json:"status"`
	Suspended bool   `json:"suspended"`
	Revoked   bool   `json:"revoked"`
}

func (a *API) stateReply(w http.ResponseWriter, r *http.Request, k *store.Key, msg string) error {
	return reply(w, r, http.StatusOK, stateResponse{Message: msg, ID: k.ID, KeyMasked: k.Mask(),
		Status: keyStatus(k, a.now()), Suspended: k.Suspended, Revoked: k.Revoked})
}

// update resolves ref and applies fn to the key. fn runs inside the
// store's update and must be pure; returning an error leaves the key
// unchanged.
func (a *API) update(r *http.Request, field, ref string, fn func(*store.Key) error) (*store.Key, error) {
	k, _, err := a.resolveKey(r.Context(), field, ref)
	if err != nil {
		return nil, err
	}
	updated, err := a.st.UpdateKey(r.Context(), k.ID, fn)
	if err != nil {
		// The store's own conflicts on update are alias collisions: the
		// other ones (changing id or hash, un-revoking) are never asked.
		if errors.Is(err, store.ErrConflict) && !isAdminError(err) {
			return nil, conflict("alias", "alias is already in use")
		}
		return nil, err
	}
	a.keyChanged(updated.ID)
	return updated, nil
}

func isAdminError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) error {
	var req keyRef
	if err := decode(r, &req); err != nil {
		return err
	}
	k, err := a.doRevoke(r, "key", req.Key, false)
	if err != nil {
		return err
	}
	return a.stateReply(w, r, k, "Key revoked")
}

// doRevoke revokes the key ref names; shared with bulk.
func (a *API) doRevoke(r *http.Request, field, ref string, bulk bool) (*store.Key, error) {
	now := a.now().UTC()
	k, err := a.update(r, field, ref, func(k *store.Key) error {
		if k.Revoked {
			return conflict(field, "key %s is already revoked", k.ID)
		}
		k.Revoked, k.RevokedAt = true, now
		return nil
	})
	if err != nil {
		return nil, err
	}
	a.audit(r, "key.revoked", k, "key revoked: "+k.Name, bulkMeta(bulk, nil))
	return k, nil
}

// bulkMeta marks audit metadata of operations run by /keys/bulk.
func bulkMeta(bulk bool, meta map[string]any) map[string]any {
	if !bulk {
		return meta
	}
	if meta == nil {
		meta = map[string]any{}
	}
	meta["bulk"] = true
	return meta
}

type suspendRequest struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

func (a *API) suspendKey(w http.ResponseWriter, r *http.Request) error {
	var req suspendRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	k, err := a.doSuspend(r, "key", req.Key, req.Reason, false)
	if err != nil {
		return err
	}
	return a.stateReply(w, r, k, "Key suspended")
}

// doSuspend suspends the key ref names; shared with bulk.
func (a *API) doSuspend(r *http.Request, field, ref, reason string, bulk bool) (*store.Key, error) {
	reason, err := checkText(siblingField(field, "reason"), reason, maxTextLen)
	if err != nil {
		return nil, err
	}
	k, err := a.update(r, field, ref, func(k *store.Key) error {
		if err := requireLive(field, k); err != nil {
			return err
		}
		if k.Suspended {
			return conflict(field, "key %s is already suspended", k.ID)
		}
		k.Suspended = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	a.audit(r, "key.suspended", k, "key suspended: "+k.Name, bulkMeta(bulk, map[string]any{"reason": reason}))
	return k, nil
}

func (a *API) resumeKey(w http.ResponseWriter, r *http.Request) error {
	var req keyRef
	if err := decode(r, &req); err != nil {
		return err
	}
	k, err := a.doResume(r, "key", req.Key, false)
	if err != nil {
		return err
	}
	return a.stateReply(w, r, k, "Key resumed")
}

// doResume resumes the suspended key ref names; shared with bulk.
func (a *API) doResume(r *http.Request, field, ref string, bulk bool) (*store.Key, error) {
	k, err := a.update(r, field, ref, func(k *store.Key) error {
		if err := requireLive(field, k); err != nil {
			return err
		}
		if !k.Suspended {
			return conflict(field, "key %s is not suspended", k.ID)
		}
		k.Suspended = false
		return nil
	})
	if err != nil {
		return nil, err
	}
	a.audit(r, "key.resumed", k, "key resumed: "+k.Name, bulkMeta(bulk, nil))
	return k, nil
}

// siblingField returns the name of a field next to field: "operations[2].key"
// and "reason" give "operations[2].reason".
func siblingField(field, name string) string {
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		return field[:i+1] + name
	}
	return name
}

// rotateResponse shows the new secret once, in "newKey".
type rotateResponse struct {
	keyView
	NewKey       string `json:"newKey"`
	OldKeyMasked string `json:"oldKeyMasked"`
	Message      string `json:"message"`
}

func (a *API) rotateKey(w http.ResponseWriter, r *http.Request) error {
	var req keyRef
	if err := decode(r, &req); err != nil {
		return err
	}
	k, _, err := a.resolveKey(r.Context(), "key", req.Key)
	if err != nil {
		return err
	}
	if err := requireLive("key", k); err != nil {
		return err
	}
	var (
		rotated *store.Key
		sec     keys.Secret
	)
	for attempt := 0; ; attempt++ {
		if sec, err = keys.Generate(a.rand); err != nil {
			return err
		}
		rotated, err = a.st.RotateKey(r.Context(), k.ID, sec.Hash, sec.Prefix, sec.Suffix)
		if errors.Is(err, store.ErrAlreadyExists) && attempt < 3 {
			continue
		}
		break
	}
	if errors.Is(err, store.ErrKeyInactive) {
		return conflict("key", "key %s is revoked", k.ID)
	}
	if err != nil {
		return err
	}
	acct, err := a.st.Account(r.Context(), rotated.ID)
	if err != nil {
		return err
	}
	a.keyChanged(rotated.ID)
	a.audit(r, "key.rotated", rotated, "key rotated: "+rotated.Name,
		map[string]any{"oldKeyMasked": k.Mask(), "newKeyMasked": rotated.Mask()})
	return reply(w, r, http.StatusOK, rotateResponse{keyView: viewKey(rotated, acct, a.now()), NewKey: sec.Plain,
		OldKeyMasked: k.Mask(), Message: "Key rotated; the old key no longer works; " + shownOnce})
}

type cloneRequest struct {
	Key       string             `json:"key"`
	Name      *string            `json:"name"`
	Credits   *credits.Amount    `json:"credits"`
	Tags      map[string]*string `json:"tags"`
	Namespace *string            `json:"namespace"`
	Alias     string             `json:"alias"`
	Set       fieldSet           `json:"-"`
}

type cloneResponse struct {
	createdKey
	ClonedFrom string `json:"clonedFrom"`
}

func (a *API) cloneKey(w http.ResponseWriter, r *http.Request) error {
	var req cloneRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	src, acct, err := a.resolveKey(r.Context(), "key", req.Key)
	if err != nil {
		return err
	}
	if err := requireLive("key", src); err != nil {
		return err
	}
	nk := src.Clone()
	nk.Alias, nk.Suspended, nk.Revoked, nk.RevokedAt = "", false, false, time.Time{}
	nk.Name = cloneName(src.Name)
	if req.Name != nil {
		if nk.Name, err = checkText("name", *req.Name, maxNameLen); err != nil {
			return err
		}
	}
	if req.Set.has("tags") {
		if nk.Tags, err = mergeTags("tags", nil, req.Tags, false); err != nil {
			return err
		}
	}
	if req.Namespace != nil {
		if nk.Namespace, err = checkNamespace("namespace", *req.Namespace); err != nil {
			return err
		}
	}
	if req.Alias != "" {
		if err := checkAlias("alias", req.Alias); err != nil {
			return err
		}
		nk.Alias = req.Alias
	}
	initial := acct.Balance
	if req.Credits != nil {
		initial = credits.Credits(*req.Credits)
	}
	created, cacct, sec, err := a.issue(r, nk, initial, "cloned from "+src.ID)
	if err != nil {
		return err
	}
	a.keyChanged(created.ID)
	a.audit(r, "key.cloned", created, "key cloned from "+src.Mask(),
		map[string]any{"sourceKeyId": src.ID, "sourceKeyMasked": src.Mask(), "credits": cacct.Balance})
	return reply(w, r, http.StatusCreated, cloneResponse{
		createdKey: a.newKeyResponse(created, cacct, sec, "Key cloned; "+shownOnce), ClonedFrom: src.ID})
}

// cloneName is "<name>-clone", kept within the name bound.
func cloneName(name string) string {
	const suffix = "-clone"
	if name == "" {
		return "clone"
	}
	for utf8.RuneCountInString(name)+len(suffix) > maxNameLen {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name + suffix
}
