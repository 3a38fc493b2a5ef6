package admin

import (
	"net/http"
	"slices"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

func (a *API) keyConfigRoutes() []Route {
	return []Route{
		{Method: "POST", Pattern: "/keys/acl", Role: store.RoleAdmin, Handler: a.setACL, Doc: Doc{
			Tag: "keys", Summary: "Set a key's tool ACL",
			Description: "allowedTools (empty: all tools) and deniedTools (always denied). A list that is sent replaces " +
				"the key's; null or [] clears it; an absent list is kept. \"*\" may end a pattern.",
			Request: aclRequest{}, Response: updatedKey{},
		}},
		{Method: "POST", Pattern: "/keys/expiry", Role: store.RoleAdmin, Handler: a.setExpiry, Doc: Doc{
			Tag: "keys", Summary: "Set, extend or remove a key's expiry",
			Description: "expiresIn (seconds from now) or expiresAt (RFC 3339); expiresAt: null or remove: true removes it.",
			Request:     expiryRequest{}, Response: updatedKey{},
		}},
		{Method: "POST", Pattern: "/keys/quota", Role: store.RoleAdmin, Handler: a.setQuota, Doc: Doc{
			Tag: "keys", Summary: "Set or remove a key's quota",
			Description: "Limits that are sent replace the key's own; absent ones keep their value; 0 is unlimited. " +
				"remove: true drops the key's quota so the global quota applies.",
			Request: quotaRequest{}, Response: updatedKey{},
		}},
		{Method: "POST", Pattern: "/limits", Role: store.RoleAdmin, Handler: a.setSpendingLimit, Doc: Doc{
			Tag: "keys", Summary: "Set a key's spending limit (0: unlimited)", Request: limitRequest{}, Response: updatedKey{},
		}},
		{Method: "POST", Pattern: "/keys/tags", Role: store.RoleAdmin, Handler: a.setTags, Doc: Doc{
			Tag: "keys", Summary: "Merge tags into a key", Description: "A string sets a tag; null removes it.",
			Request: tagsRequest{}, Response: updatedKey{},
		}},
		{Method: "POST", Pattern: "/keys/ip", Role: store.RoleAdmin, Handler: a.setIPs, Doc: Doc{
			Tag: "keys", Summary: "Replace a key's IP allowlist",
			Description: "IPv4/IPv6 addresses and CIDRs; [] or null allows any address.",
			Request:     ipRequest{}, Response: updatedKey{},
		}},
		{Method: "POST", Pattern: "/keys/alias", Role: store.RoleAdmin, Handler: a.setAlias, Doc: Doc{
			Tag: "keys", Summary: "Set or clear a key's alias",
			Description: "1 to 100 letters, digits, hyphens and underscores, unique, not starting with key_, pg_, adm_ or ak_. " +
				"null or \"\" clears it. Aliases work wherever a key is named.",
			Request: aliasRequest{}, Response: updatedKey{},
		}},
	}
}

// updatedKey answers the configuration routes: the key after the change.
type updatedKey struct {
	keyView
	Message string `json:"message"`
}

// configure resolves ref, refuses revoked keys, applies fn, audits typ
// with meta(after) and answers with the key.
func (a *API) configure(w http.ResponseWriter, r *http.Request, ref, typ, msg string, fn func(*store.Key) error,
	meta func(before, after *store.Key) map[string]any) error {
	var before *store.Key
	k, err := a.update(r, "key", ref, func(k *store.Key) error {
		if err := requireLive("key", k); err != nil {
			return err
		}
		before = k.Clone()
		return fn(k)
	})
	if err != nil {
		return err
	}
	acct, err := a.st.Account(r.Context(), k.ID)
	if err != nil {
		return err
	}
	a.audit(r, typ, k, msg+": "+k.Name, meta(before, k))
	return reply(w, r, http.StatusOK, updatedKey{keyView: viewKey(k, acct, a.now()), Message: msg})
}

type aclRequest struct {
	Key          string   `json:"key"`
	AllowedTools []string `json:"allowedTools"`
	DeniedTools  []string `json:"deniedTools"`
	Set          fieldSet `json:"-"`
}

func (a *API) setACL(w http.ResponseWriter, r *http.Request) error {
	var req aclRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if !req.Set.has("allowedTools") && !req.Set.has("deniedTools") {
		return badRequest("set allowedTools, deniedTools or both")
	}
	allowed, err := checkTools("allowedTools", req.AllowedTools)
	if err != nil {
		return err
	}
	denied, err := checkTools("deniedTools", req.DeniedTools)
	if err != nil {
		return err
	}
	return a.configure(w, r, req.Key, "key.acl_updated", "ACL updated", func(k *store.Key) error {
		if req.Set.has("allowedTools") {
			k.AllowedTools = allowed
		}
		if req.Set.has("deniedTools") {
			k.DeniedTools = denied
		}
		return nil
	}, func(_, k *store.Key) map[string]any {
		return map[string]any{"allowedTools": nonNil(k.AllowedTools), "deniedTools": nonNil(k.DeniedTools)}
	})
}

type expiryRequest struct {
	Key       string   `json:"key"`
	ExpiresIn *count   `json:"expiresIn"`
	ExpiresAt *string  `json:"expiresAt"`
	Remove    bool     `json:"remove"`
	Set       fieldSet `json:"-"`
}

func (a *API) setExpiry(w http.ResponseWriter, r *http.Request) error {
	var req expiryRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	remove := req.Remove || req.Set.null("expiresAt")
	var at time.Time
	switch {
	case remove && (req.ExpiresIn != nil || req.ExpiresAt != nil):
		return badRequest("remove the expiry or set it, not both")
	case remove:
	case req.ExpiresIn == nil && req.ExpiresAt == nil:
		return badRequest("set expiresIn (seconds) or expiresAt (RFC 3339), or expiresAt: null to remove the expiry")
	default:
		var err error
		if at, err = expiry("", req.ExpiresIn, req.ExpiresAt, a.now()); err != nil {
			return err
		}
	}
	msg := "Expiry set"
	if remove {
		msg = "Expiry removed"
	}
	return a.configure(w, r, req.Key, "key.expiry_updated", msg, func(k *store.Key) error {
		k.ExpiresAt = at
		return nil
	}, func(before, k *store.Key) map[string]any {
		return map[string]any{"expiresAt": optTime(k.ExpiresAt), "previousExpiresAt": optTime(before.ExpiresAt)}
	})
}

type quotaRequest struct {
	Key string `json:"key"`
	quotaSpec
	Remove bool     `json:"remove"`
	Set    fieldSet `json:"-"`
}

var quotaFields = []string{"dailyCallLimit", "monthlyCallLimit", "dailyCreditLimit", "monthlyCreditLimit"}

func (a *API) setQuota(w http.ResponseWriter, r *http.Request) error {
	var req quotaRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	anySet := slices.ContainsFunc(quotaFields, req.Set.has)
	switch {
	case req.Remove && anySet:
		return badRequest("remove the quota or set limits, not both")
	case !req.Remove && !anySet:
		return badRequest("set at least one of dailyCallLimit, monthlyCallLimit, dailyCreditLimit, monthlyCreditLimit, or remove: true")
	}
	msg := "Quota set"
	if req.Remove {
		msg = "Quota removed; the global quota applies"
	}
	set := req.quota()
	return a.configure(w, r, req.Key, "key.quota_updated", msg, func(k *store.Key) error {
		if req.Remove {
			k.Quota = nil
			return nil
		}
		var q store.Quota
		if k.Quota != nil {
			q = *k.Quota
		}
		if req.Set.has("dailyCallLimit") {
			q.DailyCalls = set.DailyCalls
		}
		if req.Set.has("monthlyCallLimit") {
			q.MonthlyCalls = set.MonthlyCalls
		}
		if req.Set.has("dailyCreditLimit") {
			q.DailyCredits = set.DailyCredits
		}
		if req.Set.has("monthlyCreditLimit") {
			q.MonthlyCredits = set.MonthlyCredits
		}
		k.Quota = &q
		return nil
	}, func(_, k *store.Key) map[string]any {
		return map[string]any{"quota": k.Quota}
	})
}

type limitRequest struct {
	Key           string         `json:"key"`
	SpendingLimit credits.Amount `json:"spendingLimit"`
	Set           fieldSet       `json:"-"`
}

func (a *API) setSpendingLimit(w http.ResponseWriter, r *http.Request) error {
	var req limitRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if !req.Set.has("spendingLimit") || req.Set.null("spendingLimit") {
		return badField("spendingLimit", "is required (0: unlimited)")
	}
	limit := credits.Credits(req.SpendingLimit)
	return a.configure(w, r, req.Key, "key.limit_updated", "Spending limit set", func(k *store.Key) error {
		k.SpendingLimit = limit
		return nil
	}, func(before, k *store.Key) map[string]any {
		return map[string]any{"spendingLimit": k.SpendingLimit, "previousSpendingLimit": before.SpendingLimit}
	})
}

type tagsRequest struct {
	Key  string             `json:"key"`
	Tags map[string]*string `json:"tags"`
	Set  fieldSet           `json:"-"`
}

func (a *API) setTags(w http.ResponseWriter, r *http.Request) error {
	var req tagsRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if !req.Set.has("tags") || req.Set.null("tags") {
		return badField("tags", "is required: an object of tag values (null removes a tag)")
	}
	// Validate the update alone first, so a bad value is refused before
	// the key is touched; the merged size is checked inside the update.
	if _, err := mergeTags("tags", nil, req.Tags, true); err != nil {
		return err
	}
	return a.configure(w, r, req.Key, "key.tags_updated", "Tags updated", func(k *store.Key) error {
		tags, err := mergeTags("tags", k.Tags, req.Tags, true)
		if err != nil {
			return err
		}
		k.Tags = tags
		return nil
	}, func(_, k *store.Key) map[string]any {
		return map[string]any{"tags": k.Tags}
	})
}

type ipRequest struct {
	Key         string   `json:"key"`
	IPAllowlist []string `json:"ipAllowlist"`
	Set         fieldSet `json:"-"`
}

func (a *API) setIPs(w http.ResponseWriter, r *http.Request) error {
	var req ipRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if !req.Set.has("ipAllowlist") {
		return badField("ipAllowlist", "is required ([] allows any address)")
	}
	list, err := checkIPs("ipAllowlist", req.IPAllowlist)
	if err != nil {
		return err
	}
	msg := "IP allowlist set"
	if len(list) == 0 {
		list, msg = nil, "IP allowlist cleared; any address may use the key"
	}
	return a.configure(w, r, req.Key, "key.ip_updated", msg, func(k *store.Key) error {
		k.IPAllowlist = list
		return nil
	}, func(_, k *store.Key) map[string]any {
		return map[string]any{"ipAllowlist": ipStrings(k.IPAllowlist)}
	})
}

type aliasRequest struct {
	Key   string   `json:"key"`
	Alias *string  `json:"alias"`
	Set   fieldSet `json:"-"`
}

func (a *API) setAlias(w http.ResponseWriter, r *http.Request) error {
	var req aliasRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if !req.Set.has("alias") {
		return badField("alias", "is required (null or \"\" clears it)")
	}
	alias := ""
	if req.Alias != nil {
		alias = *req.Alias
	}
	msg := "Alias cleared"
	if alias != "" {
		if err := checkAlias("alias", alias); err != nil {
			return err
		}
		msg = "Alias set to " + alias
	}
	return a.configure(w, r, req.Key, "key.alias_updated", msg, func(k *store.Key) error {
		k.Alias = alias
		return nil
	}, func(before, k *store.Key) map[string]any {
		return map[string]any{"alias": k.Alias, "previousAlias": before.Alias}
	})
}
