package admin

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/store"
)

// maxImport caps the keys of one import request.
const maxImport = 1000

// exportFormat names paygate's key export document.
const exportFormat = "paygate-keys"

func (a *API) exportRoutes() []Route {
	return []Route{
		{Method: "GET", Pattern: "/keys/export", Role: store.RoleAdmin, Handler: a.exportKeys, Doc: Doc{
			Tag: "keys", Summary: "Export API keys for backup or migration",
			Description: "Ids, SHA-256 hashes, masks, configuration and balances; never secrets (paygate does not " +
				"keep them). The JSON document can be posted to /keys/import of another paygate as it is.",
			Query: []Param{
				{Name: "format", Type: "string", Enum: []string{"json", "csv"}},
				{Name: "activeOnly", Type: "boolean", Description: "leave out revoked keys"},
				{Name: "namespace", Type: "string"},
			},
			Response: exportDoc{}, CSV: true,
		}},
		{Method: "POST", Pattern: "/keys/import", Role: store.RoleAdmin, Handler: a.importKeys, Doc: Doc{
			Tag: "keys", Summary: "Import API keys",
			Description: "Up to 1000 keys, each with either a plaintext \"key\" (pg_..., hashed on the way in; " +
				"paygate-mcp exports) or a \"hash\" (a paygate export). mode: skip (default) keeps existing keys, " +
				"overwrite replaces their configuration and sets their balance, error refuses the whole request " +
				"if any key exists or is invalid.",
			Request: importDoc{}, Response: importResponse{},
		}},
	}
}

// exportKey is one key in an export: everything but the secret.
type exportKey struct {
	ID              string            `json:"id"`
	Hash            string            `json:"hash"` // hex SHA-256 of the secret
	KeyMasked       string            `json:"keyMasked"`
	Name            string            `json:"name"`
	Alias           string            `json:"alias,omitempty"`
	Namespace       string            `json:"namespace"`
	Credits         credits.Credits   `json:"credits"`
	TotalSpent      credits.Credits   `json:"totalSpent"`
	TotalCalls      int64             `json:"totalCalls"`
	LastUsedAt      *string           `json:"lastUsedAt"`
	CreatedAt       string            `json:"createdAt"`
	ExpiresAt       *string           `json:"expiresAt"`
	Active          bool              `json:"active"`
	Revoked         bool              `json:"revoked"`
	RevokedAt       *string           `json:"revokedAt"`
	Suspended       bool              `json:"suspended"`
	AllowedTools    []string          `json:"allowedTools"`
	DeniedTools     []string          `json:"deniedTools"`
	IPAllowlist     []string          `json:"ipAllowlist"`
	SpendingLimit   credits.Credits   `json:"spendingLimit"`
	Quota           *store.Quota      `json:"quota"`
	RateLimitPerMin *int64            `json:"rateLimitPerMin"`
	Tags            map[string]string `json:"tags"`
}

type exportDoc struct {
	Format     string      `json:"format"`
	Version    int         `json:"version"`
	ExportedAt string      `json:"exportedAt"`
	Count      int         `json:"count"`
	Keys       []exportKey `json:"keys"`
}

func exportOf(k *store.Key, acct store.Account) exportKey {
	e := exportKey{
		ID: k.ID, Hash: hex.EncodeToString(k.Hash[:]), KeyMasked: k.Mask(), Name: k.Name, Alias: k.Alias,
		Namespace: k.Namespace, Credits: acct.Balance, TotalSpent: acct.Spent, TotalCalls: acct.Calls,
		LastUsedAt: optTime(acct.LastUsedAt), CreatedAt: fmtTime(k.CreatedAt), ExpiresAt: optTime(k.ExpiresAt),
		Active: !k.Revoked, Revoked: k.Revoked, RevokedAt: optTime(k.RevokedAt), Suspended: k.Suspended,
		AllowedTools: nonNil(k.AllowedTools), DeniedTools: nonNil(k.DeniedTools), IPAllowlist: ipStrings(k.IPAllowlist),
		SpendingLimit: k.SpendingLimit, Quota: k.Quota, RateLimitPerMin: k.RateLimitPerMin, Tags: k.Tags,
	}
	if e.Tags == nil {
		e.Tags = map[string]string{}
	}
	return e
}

func (a *API) exportKeys(w http.ResponseWriter, r *http.Request) error {
	q := queryOf(r)
	format, err := q.oneOf("format", "json", "json", "csv")
	if err != nil {
		return err
	}
	activeOnly, err := q.boolean("activeOnly")
	if err != nil {
		return err
	}
	now := a.now()
	f := store.KeyFilter{SortBy: "createdAt", Now: now}
	if ns := q.str("namespace"); ns != "" {
		if f.Namespace, err = checkNamespace("namespace", ns); err != nil {
			return err
		}
	}
	vs, _, err := a.st.ListKeys(r.Context(), f)
	if err != nil {
		return err
	}
	doc := exportDoc{Format: exportFormat, Version: 1, ExportedAt: fmtTime(now), Keys: make([]exportKey, 0, len(vs))}
	for _, v := range vs {
		if activeOnly && v.Key.Revoked {
			continue
		}
		doc.Keys = append(doc.Keys, exportOf(v.Key, v.Account))
	}
	doc.Count = len(doc.Keys)
	stamp := now.UTC().Format("20060102-150405")
	if format == "json" {
		w.Header().Set("Content-Disposition", `attachment; filename="paygate-keys-`+stamp+`.json"`)
		return reply(w, r, http.StatusOK, doc)
	}
	header := []string{"id", "hash", "keyMasked", "name", "alias", "namespace", "status", "credits", "totalSpent",
		"totalCalls", "spendingLimit", "createdAt", "lastUsedAt", "expiresAt", "allowedTools", "deniedTools",
		"ipAllowlist", "tags"}
	return writeCSV(w, "paygate-keys-"+stamp+".csv", header, func(emit func([]string) error) error {
		for _, v := range vs {
			if activeOnly && v.Key.Revoked {
				continue
			}
			e := exportOf(v.Key, v.Account)
			tags, _ := json.Marshal(e.Tags)
			if err := emit([]string{e.ID, e.Hash, e.KeyMasked, csvText(e.Name), e.Alias, e.Namespace,
				keyStatus(v.Key, now), fmtInt(e.Credits), fmtInt(e.TotalSpent), fmtInt(e.TotalCalls),
				fmtInt(e.SpendingLimit), e.CreatedAt, deref(e.LastUsedAt), deref(e.ExpiresAt),
				csvText(strings.Join(e.AllowedTools, ";")), csvText(strings.Join(e.DeniedTools, ";")),
				strings.Join(e.IPAllowlist, ";"), csvText(string(tags))}); err != nil {
				return err
			}
		}
		return nil
	})
}

func fmtInt(n int64) string { return strconv.FormatInt(n, 10) }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type importRequest struct {
	Keys []json.RawMessage `json:"keys"`
	Mode string            `json:"mode"` // skip (default), overwrite, error
	// The members of an export document, so one can be posted as it is.
	Format     string `json:"format"`
	Version    count  `json:"version"`
	ExportedAt string `json:"exportedAt"`
	Count      count  `json:"count"`
}

// importDoc documents the request: importRequest decodes the keys one by
// one so that, in modes skip and overwrite, a bad one does not refuse the
// others.
type importDoc struct {
	Keys []importKey `json:"keys"`
	Mode string      `json:"mode"`
}

// importKey is one key to import: a plaintext secret or a hash.
type importKey struct {
	Key             string             `json:"key"`  // plaintext pg_ secret
	Hash            string             `json:"hash"` // or the hex SHA-256 of one
	KeyMasked       string             `json:"keyMasked"`
	ID              string             `json:"id"`
	Name            string             `json:"name"`
	Alias           string             `json:"alias"`
	Namespace       string             `json:"namespace"`
	Status          string             `json:"status"` // informational; revoked/suspended are read from their own fields
	Credits         credits.Amount     `json:"credits"`
	TotalSpent      credits.Amount     `json:"totalSpent"`
	TotalCalls      count              `json:"totalCalls"`
	LastUsedAt      *string            `json:"lastUsedAt"`
	CreatedAt       *string            `json:"createdAt"`
	ExpiresAt       *string            `json:"expiresAt"`
	Active          *bool              `json:"active"` // false: revoked (paygate-mcp's meaning)
	Revoked         bool               `json:"revoked"`
	RevokedAt       *string            `json:"revokedAt"`
	Suspended       bool               `json:"suspended"`
	Expired         bool               `json:"expired"` // informational
	AllowedTools    []string           `json:"allowedTools"`
	DeniedTools     []string           `json:"deniedTools"`
	IPAllowlist     []string           `json:"ipAllowlist"`
	SpendingLimit   credits.Amount     `json:"spendingLimit"`
	Quota           *quotaSpec         `json:"quota"`
	RateLimitPerMin *count             `json:"rateLimitPerMin"`
	Tags            map[string]*string `json:"tags"`
}

type importResult struct {
	Index  int    `json:"index"`
	ID     string `json:"id,omitempty"`
	Key    string `json:"key,omitempty"` // masked
	Name   string `json:"name,omitempty"`
	Status string `json:"status"` // imported, overwritten, skipped, error
	Error  string `json:"error,omitempty"`
}

type importResponse struct {
	Total       int            `json:"total"`
	Imported    int            `json:"imported"`
	Overwritten int            `json:"overwritten"`
	Skipped     int            `json:"skipped"`
	Errors      int            `json:"errors"`
	Mode        string         `json:"mode"`
	Results     []importResult `json:"results"`
	Message     string         `json:"message"`
}

// importPlan is one checked entry.
type importPlan struct {
	key      *store.Key
	initial  credits.Credits
	opening  store.Account
	existing *store.Key // the stored key it collides with, by hash or id
	err      error
}

var keyIDRE = regexp.MustCompile(`^key_[0-9a-f]{16}$`)

// keyImporter is the optional store capability of creating a key with
// opening counters (spent, calls, last use) carried over from elsewhere.
type keyImporter = store.KeyImporter

func (a *API) importKeys(w http.ResponseWriter, r *http.Request) error {
	var req importRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	mode := req.Mode
	switch mode {
	case "":
		mode = "skip"
	case "skip", "overwrite", "error":
	default:
		return badField("mode", "must be skip, overwrite or error")
	}
	if req.Format != "" && req.Format != exportFormat {
		return badField("format", "must be %q", exportFormat)
	}
	if req.Version > 1 {
		return badField("version", "export version %d is newer than this paygate understands (1)", req.Version)
	}
	switch n := len(req.Keys); {
	case n == 0:
		return badField("keys", "must hold at least one key")
	case n > maxImport:
		return badField("keys", "must hold at most %d keys (got %d)", maxImport, n)
	}

	// Check everything before the first write.
	plans := make([]importPlan, len(req.Keys))
	seen := map[string]int{}
	for i, raw := range req.Keys {
		p := &plans[i]
		path := fmt.Sprintf("keys[%d]", i)
		p.key, p.initial, p.opening, p.err = a.planImport(r, raw, path)
		if p.err == nil {
			p.err = dupCheck(seen, i, path, p.key)
		}
		if p.err == nil {
			p.existing, p.err = a.importConflict(r.Context(), path, p.key)
		}
		if p.err == nil && p.existing != nil && mode == "overwrite" && p.existing.Revoked && !p.key.Revoked {
			p.err = conflict(path, "key %s is revoked and cannot be restored", p.existing.ID)
		}
		if mode == "error" {
			if p.err != nil {
				return p.err
			}
			if p.existing != nil {
				return conflict(path, "key already exists as %s (mode error)", p.existing.ID)
			}
		}
	}

	out := importResponse{Total: len(plans), Mode: mode, Results: make([]importResult, len(plans))}
	for i := range plans {
		p := &plans[i]
		res := &out.Results[i]
		res.Index = i
		if p.key != nil {
			res.Key, res.Name, res.ID = p.key.Mask(), p.key.Name, p.key.ID
		}
		var err error
		switch {
		case p.err != nil:
			err = p.err
		case p.existing != nil && mode == "skip":
			res.Status, res.ID = "skipped", p.existing.ID
			out.Skipped++
			continue
		case p.existing != nil:
			var k *store.Key
			if k, err = a.overwrite(r, p); err == nil {
				res.Status, res.ID = "overwritten", k.ID
				out.Overwritten++
				a.audit(r, "key.imported", k, "key overwritten by import", map[string]any{"mode": mode, "overwritten": true})
				continue
			}
		default:
			var k *store.Key
			if k, err = a.createImported(r, p); err == nil {
				res.Status, res.ID = "imported", k.ID
				out.Imported++
				a.audit(r, "key.imported", k, "key imported: "+k.Name, map[string]any{"mode": mode, "credits": p.initial})
				continue
			}
		}
		e := classify(err, "")
		if e.Status >= 500 {
			a.log.Error("import failed", "index", i, "request_id", state(r).requestID, "err", err)
		}
		res.Status, res.Error = "error", e.Message
		out.Errors++
	}
	out.Message = fmt.Sprintf("Imported %d, overwritten %d, skipped %d, errors %d", out.Imported, out.Overwritten, out.Skipped, out.Errors)
	return reply(w, r, http.StatusOK, out)
}

// planImport decodes and validates one entry into the key it describes.
func (a *API) planImport(r *http.Request, raw json.RawMessage, path string) (*store.Key, credits.Credits, store.Account, error) {
	var in importKey
	ignored, err := decodeJSON(raw, &in, path)
	rc := state(r)
	rc.ignored = append(rc.ignored, ignored...)
	if err != nil {
		return nil, 0, store.Account{}, err
	}
	f := func(name string) string { return path + "." + name }
	now := a.now()
	k := &store.Key{SpendingLimit: credits.Credits(in.SpendingLimit), Suspended: in.Suspended}
	switch {
	case in.Key != "" && in.Hash != "":
		return nil, 0, store.Account{}, badField(f("key"), "set key or hash, not both")
	case in.Key != "":
		if err := keys.ValidImport(in.Key); err != nil {
			return nil, 0, store.Account{}, badField(f("key"), "%v", err)
		}
		k.Hash = keys.Hash(in.Key)
		k.Prefix, k.Suffix = keys.Parts(in.Key)
	case in.Hash != "":
		b, err := hex.DecodeString(in.Hash)
		if err != nil || len(b) != len(k.Hash) {
			return nil, 0, store.Account{}, badField(f("hash"), "must be 64 hex digits (a SHA-256)")
		}
		copy(k.Hash[:], b)
		if k.Hash == (store.Hash{}) {
			return nil, 0, store.Account{}, badField(f("hash"), "must not be all zeros")
		}
		if k.Prefix, k.Suffix, err = maskParts(in.KeyMasked); err != nil {
			return nil, 0, store.Account{}, badField(f("keyMasked"), "%v", err)
		}
	default:
		return nil, 0, store.Account{}, badField(f("key"), "is required (or hash)")
	}
	if in.ID != "" {
		if !keyIDRE.MatchString(in.ID) {
			return nil, 0, store.Account{}, badField(f("id"), "must be key_ followed by 16 hex digits")
		}
		k.ID = in.ID
	}
	if k.Name, err = checkText(f("name"), in.Name, maxNameLen); err != nil {
		return nil, 0, store.Account{}, err
	}
	if k.Namespace, err = checkNamespace(f("namespace"), in.Namespace); err != nil {
		return nil, 0, store.Account{}, err
	}
	if in.Alias != "" {
		if err := checkAlias(f("alias"), in.Alias); err != nil {
			return nil, 0, store.Account{}, err
		}
		k.Alias = in.Alias
	}
	if k.AllowedTools, err = checkTools(f("allowedTools"), in.AllowedTools); err != nil {
		return nil, 0, store.Account{}, err
	}
	if k.DeniedTools, err = checkTools(f("deniedTools"), in.DeniedTools); err != nil {
		return nil, 0, store.Account{}, err
	}
	if k.IPAllowlist, err = checkIPs(f("ipAllowlist"), in.IPAllowlist); err != nil {
		return nil, 0, store.Account{}, err
	}
	if k.Tags, err = mergeTags(f("tags"), nil, in.Tags, false); err != nil {
		return nil, 0, store.Account{}, err
	}
	if in.Quota != nil {
		q := in.Quota.quota()
		k.Quota = &q
	}
	if in.RateLimitPerMin != nil {
		n := int64(*in.RateLimitPerMin)
		k.RateLimitPerMin = &n
	}
	var opening store.Account
	for _, t := range []struct {
		field string
		in    *string
		out   *time.Time
	}{
		{"createdAt", in.CreatedAt, &k.CreatedAt},
		{"expiresAt", in.ExpiresAt, &k.ExpiresAt}, // a past expiry is kept: the key arrives expired
		{"revokedAt", in.RevokedAt, &k.RevokedAt},
		{"lastUsedAt", in.LastUsedAt, &opening.LastUsedAt},
	} {
		if t.in == nil || *t.in == "" {
			continue
		}
		v, err := parseTime(f(t.field), *t.in)
		if err != nil {
			return nil, 0, store.Account{}, err
		}
		*t.out = v.UTC()
	}
	if k.CreatedAt.IsZero() || k.CreatedAt.After(now) {
		k.CreatedAt = now.UTC()
	}
	k.Revoked = in.Revoked || in.Active != nil && !*in.Active
	if k.Revoked && k.RevokedAt.IsZero() {
		k.RevokedAt = now.UTC()
	}
	if !k.Revoked {
		k.RevokedAt = time.Time{}
	}
	opening.Spent, opening.Calls = credits.Credits(in.TotalSpent), int64(in.TotalCalls)
	return k, credits.Credits(in.Credits), opening, nil
}

// maskParts splits a mask ("pg_abcd...wxyz") into the parts a key keeps.
// An empty mask gives the scheme prefix only.
func maskParts(mask string) (prefix, suffix string, err error) {
	if mask == "" {
		return keys.APIKeyPrefix, "", nil
	}
	p, s, ok := strings.Cut(mask, "...")
	if !ok || len(p) > keys.MaskPrefixLen || len(s) > keys.MaskSuffixLen || !printable(p+s) || strings.Contains(p+s, " ") {
		return "", "", errors.New(`must look like "pg_abcd...wxyz"`)
	}
	return p, s, nil
}

// dupCheck refuses two entries of one request naming the same key.
func dupCheck(seen map[string]int, i int, path string, k *store.Key) error {
	ids := []string{"hash:" + hex.EncodeToString(k.Hash[:])}
	if k.ID != "" {
		ids = append(ids, "id:"+k.ID)
	}
	if k.Alias != "" {
		ids = append(ids, "alias:"+k.Alias)
	}
	for _, id := range ids {
		if j, ok := seen[id]; ok {
			what, _, _ := strings.Cut(id, ":")
			return badField(path, "same %s as keys[%d]", what, j)
		}
	}
	for _, id := range ids {
		seen[id] = i
	}
	return nil
}

// importConflict finds the stored key an entry collides with (by hash,
// else by id) and refuses entries whose hash and id name different keys
// or whose alias belongs to another key.
func (a *API) importConflict(ctx context.Context, path string, k *store.Key) (*store.Key, error) {
	byHash, err := a.st.LookupHash(ctx, k.Hash)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var byID *store.Key
	if k.ID != "" {
		byID, _, err = a.st.GetKey(ctx, k.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	existing := byHash
	switch {
	case byHash != nil && byID != nil && byHash.ID != byID.ID:
		return nil, conflict(path, "hash belongs to %s but id to another key", byHash.ID)
	case existing == nil:
		existing = byID
	}
	if k.Alias != "" {
		owner, err := a.st.GetKeyByAlias(ctx, k.Alias)
		switch {
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return nil, err
		case owner != nil && (existing == nil || owner.ID != existing.ID):
			return nil, conflict(path+".alias", "alias %q is already in use", k.Alias)
		}
	}
	return existing, nil
}

func (a *API) createImported(r *http.Request, p *importPlan) (*store.Key, error) {
	k := p.key.Clone()
	if k.ID == "" {
		id, err := keys.NewID(a.rand)
		if err != nil {
			return nil, err
		}
		k.ID = id
	}
	m := state(r).meta("imported")
	var (
		created *store.Key
		err     error
	)
	if imp, ok := a.st.(keyImporter); ok {
		created, _, err = imp.ImportKey(r.Context(), k, p.initial, p.opening, m)
	} else {
		created, _, err = a.st.CreateKey(r.Context(), k, p.initial, m)
	}
	if err != nil {
		return nil, err
	}
	a.keyChanged(created.ID)
	return created, nil
}

// overwrite replaces an existing key's configuration and secret hash with
// the entry's and sets its balance with an adjustment. These are separate
// store steps: a failure part-way leaves the key partly updated, and the
// result reports the error.
func (a *API) overwrite(r *http.Request, p *importPlan) (*store.Key, error) {
	ctx := r.Context()
	ex := p.existing
	if ex.Hash != p.key.Hash {
		if _, err := a.st.RotateKey(ctx, ex.ID, p.key.Hash, p.key.Prefix, p.key.Suffix); err != nil {
			return nil, err
		}
	}
	want := p.key
	k, err := a.st.UpdateKey(ctx, ex.ID, func(k *store.Key) error {
		id, hash, prefix, suffix, created := k.ID, k.Hash, k.Prefix, k.Suffix, k.CreatedAt
		revoked, revokedAt := k.Revoked, k.RevokedAt
		*k = *want.Clone()
		k.ID, k.Hash, k.Prefix, k.Suffix, k.CreatedAt = id, hash, prefix, suffix, created
		if revoked { // revocation is permanent
			k.Revoked, k.RevokedAt = true, revokedAt
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	a.keyChanged(k.ID)
	acct, err := a.st.Account(ctx, k.ID)
	if err != nil {
		return nil, err
	}
	if delta := p.initial - acct.Balance; delta != 0 {
		rec, err := a.st.TopUp(ctx, k.ID, delta, store.EntryAdjustment, state(r).meta("import overwrite"))
		if err != nil {
			return nil, err
		}
		if err := waitDurable(r, rec); err != nil {
			return nil, err
		}
	}
	return k, nil
}
