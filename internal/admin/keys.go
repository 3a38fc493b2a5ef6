package admin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/store"
)

func (a *API) keyRoutes() []Route {
	return []Route{
		{Method: "POST", Pattern: "/keys", Role: store.RoleAdmin, Handler: a.createKey, Doc: Doc{
			Tag: "keys", Summary: "Create an API key",
			Description: "Creates a key with optional ACL, expiry, quota, spending limit, tags, IP allowlist, namespace " +
				"and alias. The response carries the secret in \"key\": it is shown this once and never again.",
			Request: keySpec{}, Response: createdKey{}, Status: http.StatusCreated,
		}},
		{Method: "GET", Pattern: "/keys", Role: store.RoleViewer, Handler: a.listKeys, Doc: Doc{
			Tag: "keys", Summary: "List API keys (masked)",
			Description: "Without query parameters: a flat array of every key, oldest first. With any parameter: " +
				"a page {keys, total, offset, limit, hasMore}.",
			Query: listParams, Response: keyPage{},
		}},
		{Method: "GET", Pattern: "/keys/stats", Role: store.RoleViewer, Handler: a.keyStats, Doc: Doc{
			Tag: "keys", Summary: "Aggregate key statistics",
			Query:    []Param{{Name: "namespace", Type: "string", Description: "only keys of this namespace"}},
			Response: keyStats{},
		}},
		{Method: "POST", Pattern: "/keys/search", Role: store.RoleAdmin, Handler: a.searchKeys, Doc: Doc{
			Tag: "keys", Summary: "Search keys by tags and namespace",
			Description: "Every given tag must match exactly. Read-only, but a POST: viewers use GET /keys?tag=name:value.",
			Request:     searchRequest{}, Response: searchResponse{},
		}},
	}
}

// issue gives k a new id and secret and stores it with initial credits.
// It retries the (astronomically unlikely) id or secret collision.
func (a *API) issue(r *http.Request, k *store.Key, initial credits.Credits, note string) (*store.Key, store.Account, keys.Secret, error) {
	for attempt := 0; ; attempt++ {
		sec, err := keys.Generate(a.rand)
		if err != nil {
			return nil, store.Account{}, keys.Secret{}, err
		}
		id, err := keys.NewID(a.rand)
		if err != nil {
			return nil, store.Account{}, keys.Secret{}, err
		}
		nk := k.Clone()
		nk.ID, nk.Hash, nk.Prefix, nk.Suffix = id, sec.Hash, sec.Prefix, sec.Suffix
		nk.CreatedAt = a.now().UTC()
		created, acct, err := a.st.CreateKey(r.Context(), nk, initial, state(r).meta(note))
		switch {
		case errors.Is(err, store.ErrAlreadyExists) && attempt < 3:
			continue
		case errors.Is(err, store.ErrConflict):
			return nil, store.Account{}, keys.Secret{}, conflict("alias", "alias %q is already in use", k.Alias)
		case err != nil:
			return nil, store.Account{}, keys.Secret{}, err
		}
		return created, acct, sec, nil
	}
}

// createdKey is the response that shows a new secret, once.
type createdKey struct {
	keyView
	Message string `json:"message"`
}

func (a *API) newKeyResponse(k *store.Key, acct store.Account, sec keys.Secret, msg string) createdKey {
	v := viewKey(k, acct, a.now())
	v.Key = sec.Plain
	return createdKey{keyView: v, Message: msg}
}

const shownOnce = "store the key now: it is shown only once"

func (a *API) createKey(w http.ResponseWriter, r *http.Request) error {
	var req keySpec
	if err := decode(r, &req); err != nil {
		return err
	}
	res, err := a.doCreate(r, &req, "", false)
	if err != nil {
		return err
	}
	return reply(w, r, http.StatusCreated, res)
}

// doCreate validates spec and creates the key; shared with bulk. path
// prefixes field names.
func (a *API) doCreate(r *http.Request, spec *keySpec, path string, bulk bool) (createdKey, error) {
	k, err := spec.build(path, a.now())
	if err != nil {
		return createdKey{}, err
	}
	created, acct, sec, err := a.issue(r, k, credits.Credits(spec.Credits), "key created")
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Field == "alias" {
			e.Field = joinPath(path, "alias")
		}
		return createdKey{}, err
	}
	a.keyChanged(created.ID)
	a.audit(r, "key.created", created, "key created: "+created.Name, bulkMeta(bulk,
		map[string]any{"name": created.Name, "credits": acct.Balance, "namespace": created.Namespace}))
	return a.newKeyResponse(created, acct, sec, "Key created; "+shownOnce), nil
}

var listParams = []Param{
	{Name: "limit", Type: "integer", Description: "page size, 1 to 500 (default 50)"},
	{Name: "offset", Type: "integer", Description: "keys to skip (default 0)"},
	{Name: "sortBy", Type: "string", Enum: []string{"createdAt", "name", "credits", "lastUsedAt", "totalSpent", "totalCalls"}},
	{Name: "order", Type: "string", Enum: []string{"asc", "desc"}, Description: "default desc"},
	{Name: "namespace", Type: "string"},
	{Name: "status", Type: "string", Enum: []string{statusActive, statusSuspended, statusExpired, statusRevoked}},
	{Name: "active", Type: "boolean", Description: "true: same as status=active"},
	{Name: "suspended", Type: "boolean", Description: "true: same as status=suspended"},
	{Name: "expired", Type: "boolean", Description: "true: same as status=expired"},
	{Name: "revoked", Type: "boolean", Description: "true: same as status=revoked"},
	{Name: "namePrefix", Type: "string", Description: "case-insensitive name prefix"},
	{Name: "minCredits", Type: "integer"},
	{Name: "maxCredits", Type: "integer"},
	{Name: "tag", Type: "string", Description: "name:value; repeat for several (all must match)"},
}

// keyPage is the paged form of GET /keys.
type keyPage struct {
	Keys    []keyView `json:"keys"`
	Total   int       `json:"total"`
	Offset  int       `json:"offset"`
	Limit   int       `json:"limit"`
	HasMore bool      `json:"hasMore"`
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) error {
	now := a.now()
	if len(r.URL.Query()) == 0 {
		vs, _, err := a.st.ListKeys(r.Context(), store.KeyFilter{SortBy: "createdAt", Now: now})
		if err != nil {
			return err
		}
		return reply(w, r, http.StatusOK, a.views(vs))
	}
	f, err := keyFilter(queryOf(r))
	if err != nil {
		return err
	}
	f.Now = now
	vs, total, err := a.st.ListKeys(r.Context(), f)
	if err != nil {
		return err
	}
	return reply(w, r, http.StatusOK, keyPage{Keys: a.views(vs), Total: total, Offset: f.Offset, Limit: f.Limit,
		HasMore: f.Offset+len(vs) < total})
}

func (a *API) views(vs []store.KeyView) []keyView {
	now := a.now()
	out := make([]keyView, len(vs))
	for i, v := range vs {
		out[i] = viewKey(v.Key, v.Account, now)
	}
	return out
}

// keyFilter reads GET /keys's paging, sorting and filter parameters.
func keyFilter(q query) (store.KeyFilter, error) {
	var f store.KeyFilter
	var err error
	if f.Limit, err = q.intIn("limit", 50, 1, 500); err != nil {
		return f, err
	}
	if f.Offset, err = q.intIn("offset", 0, 0, 1<<30); err != nil {
		return f, err
	}
	if f.SortBy, err = q.oneOf("sortBy", "createdAt", "createdAt", "name", "credits", "lastUsedAt", "totalSpent", "totalCalls"); err != nil {
		return f, err
	}
	order, err := q.oneOf("order", "desc", "asc", "desc")
	if err != nil {
		return f, err
	}
	f.Desc = order == "desc"
	if ns := q.str("namespace"); ns != "" {
		if f.Namespace, err = checkNamespace("namespace", ns); err != nil {
			return f, err
		}
	}
	if f.Status, err = q.oneOf("status", "", statusActive, statusSuspended, statusExpired, statusRevoked); err != nil {
		return f, err
	}
	for _, st := range []string{statusActive, statusSuspended, statusExpired, statusRevoked} {
		if !q.has(st) {
			continue
		}
		on, err := q.boolean(st)
		if err != nil {
			return f, err
		}
		if !on {
			return f, badField(st, "only %s=true is supported; use status= to pick one status", st)
		}
		if f.Status != "" && f.Status != st {
			return f, badField(st, "conflicts with status=%s", f.Status)
		}
		f.Status = st
	}
	f.NamePrefix = q.str("namePrefix")
	if f.MinCredits, err = q.amount("minCredits"); err != nil {
		return f, err
	}
	if f.MaxCredits, err = q.amount("maxCredits"); err != nil {
		return f, err
	}
	for _, t := range q.v["tag"] {
		name, value, ok := strings.Cut(t, ":")
		if !ok || name == "" {
			return f, badField("tag", "must be name:value")
		}
		if f.Tags == nil {
			f.Tags = map[string]string{}
		}
		f.Tags[name] = value
	}
	return f, nil
}

// keyStats is GET /keys/stats.
type keyStats struct {
	Total                 int            `json:"total"`
	Active                int            `json:"active"`
	Suspended             int            `json:"suspended"`
	Expired               int            `json:"expired"`
	Revoked               int            `json:"revoked"`
	TotalCreditsAllocated int64          `json:"totalCreditsAllocated"` // remaining + spent
	TotalCreditsSpent     int64          `json:"totalCreditsSpent"`
	TotalCreditsRemaining int64          `json:"totalCreditsRemaining"`
	TotalCalls            int64          `json:"totalCalls"`
	ByNamespace           map[string]int `json:"byNamespace"`
	ByGroup               map[string]int `json:"byGroup"`
	FilteredByNamespace   string         `json:"filteredByNamespace,omitempty"`
}

func (a *API) keyStats(w http.ResponseWriter, r *http.Request) error {
	q := queryOf(r)
	f := store.KeyFilter{Now: a.now()}
	if ns := q.str("namespace"); ns != "" {
		var err error
		if f.Namespace, err = checkNamespace("namespace", ns); err != nil {
			return err
		}
	}
	vs, _, err := a.st.ListKeys(r.Context(), f)
	if err != nil {
		return err
	}
	s := keyStats{ByNamespace: map[string]int{}, ByGroup: map[string]int{}, FilteredByNamespace: f.Namespace}
	for _, v := range vs {
		s.Total++
		switch keyStatus(v.Key, f.Now) {
		case statusActive:
			s.Active++
		case statusSuspended:
			s.Suspended++
		case statusExpired:
			s.Expired++
		case statusRevoked:
			s.Revoked++
		}
		s.TotalCreditsRemaining += v.Account.Balance
		s.TotalCreditsSpent += v.Account.Spent
		s.TotalCalls += v.Account.Calls
		s.ByNamespace[v.Key.Namespace]++
		if v.Key.Group != "" {
			s.ByGroup[v.Key.Group]++
		}
	}
	s.TotalCreditsAllocated = s.TotalCreditsRemaining + s.TotalCreditsSpent
	return reply(w, r, http.StatusOK, s)
}

type searchRequest struct {
	Tags      map[string]string `json:"tags"`
	Namespace string            `json:"namespace"`
	Limit     count             `json:"limit"`
	Offset    count             `json:"offset"`
}

type searchResponse struct {
	Keys  []keyView `json:"keys"`
	Total int       `json:"total"`
	Count int       `json:"count"`
}

func (a *API) searchKeys(w http.ResponseWriter, r *http.Request) error {
	var req searchRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if len(req.Tags) == 0 && req.Namespace == "" {
		return badRequest("set tags, namespace or both")
	}
	if len(req.Tags) > maxTags {
		return badField("tags", "at most %d tags", maxTags)
	}
	f := store.KeyFilter{Tags: req.Tags, Now: a.now(), Limit: 100, Offset: int(req.Offset)}
	if req.Limit != 0 {
		if req.Limit > 500 {
			return badField("limit", "must be from 1 to 500")
		}
		f.Limit = int(req.Limit)
	}
	if req.Namespace != "" {
		var err error
		if f.Namespace, err = checkNamespace("namespace", req.Namespace); err != nil {
			return err
		}
	}
	vs, total, err := a.st.ListKeys(r.Context(), f)
	if err != nil {
		return err
	}
	return reply(w, r, http.StatusOK, searchResponse{Keys: a.views(vs), Total: total, Count: len(vs)})
}
