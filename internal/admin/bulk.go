package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/paygate/paygate/internal/store"
)

// maxBulkOps caps the operations of one /keys/bulk request.
const maxBulkOps = 100

func (a *API) bulkRoutes() []Route {
	return []Route{
		{Method: "POST", Pattern: "/keys/bulk", Role: store.RoleAdmin, Handler: a.bulk, Doc: Doc{
			Tag: "keys", Summary: "Run up to 100 key operations",
			Description: "Actions: create (the fields of POST /keys), topup (key, credits, memo), revoke (key), " +
				"suspend (key, reason), resume (key). Operations run in order; each is atomic on its own and a " +
				"failed one does not stop the others. Created secrets are shown once, in their results.",
			Request: bulkDoc{}, Response: bulkResponse{},
		}},
	}
}

type bulkRequest struct {
	Operations []json.RawMessage `json:"operations"`
}

// bulkDoc documents the request: bulkRequest decodes the operations one
// by one so that a bad one does not refuse the others.
type bulkDoc struct {
	Operations []bulkOp `json:"operations"`
}

// bulkOp is one operation; which fields it may carry depends on Action.
type bulkOp struct {
	Action string `json:"action"`
	keySpec
	Key    string   `json:"key"`
	Reason string   `json:"reason"`
	Memo   string   `json:"memo"`
	Set    fieldSet `json:"-"`
}

// bulkFields lists the fields each action accepts besides "action".
var bulkFields = map[string][]string{
	"create":  {"name", "credits", "allowedTools", "deniedTools", "expiresIn", "expiresAt", "quota", "spendingLimit", "rateLimitPerMin", "tags", "ipAllowlist", "namespace", "alias"},
	"topup":   {"key", "credits", "memo"},
	"revoke":  {"key"},
	"suspend": {"key", "reason"},
	"resume":  {"key"},
}

type bulkResult struct {
	Index   int    `json:"index"`
	Action  string `json:"action"`
	Success bool   `json:"success"`
	Result  any    `json:"result,omitempty"`
	Error   string `json:"error,omitempty"`
	Code    string `json:"code,omitempty"`
	Field   string `json:"field,omitempty"`
}

type bulkResponse struct {
	Total     int          `json:"total"`
	Succeeded int          `json:"succeeded"`
	Failed    int          `json:"failed"`
	Results   []bulkResult `json:"results"`
}

func (a *API) bulk(w http.ResponseWriter, r *http.Request) error {
	var req bulkRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	switch n := len(req.Operations); {
	case n == 0:
		return badField("operations", "must hold at least one operation")
	case n > maxBulkOps:
		return badField("operations", "must hold at most %d operations (got %d)", maxBulkOps, n)
	}
	out := bulkResponse{Total: len(req.Operations), Results: make([]bulkResult, len(req.Operations))}
	for i, raw := range req.Operations {
		res := &out.Results[i]
		res.Index = i
		v, err := a.bulkOne(r, i, raw, res)
		if err != nil {
			e := classify(err, "")
			if e.Status >= 500 {
				a.log.Error("bulk operation failed", "index", i, "request_id", state(r).requestID, "err", err)
			}
			res.Error, res.Code, res.Field = e.Message, e.Code, e.Field
			out.Failed++
			continue
		}
		res.Success, res.Result = true, v
		out.Succeeded++
	}
	return reply(w, r, http.StatusOK, out)
}

// bulkOne decodes, checks and runs operation i.
func (a *API) bulkOne(r *http.Request, i int, raw json.RawMessage, res *bulkResult) (any, error) {
	path := fmt.Sprintf("operations[%d]", i)
	var op bulkOp
	ignored, err := decodeJSON(raw, &op, path)
	rc := state(r)
	rc.ignored = append(rc.ignored, ignored...)
	if err != nil {
		return nil, err
	}
	res.Action = op.Action
	allowed, ok := bulkFields[op.Action]
	if !ok {
		return nil, badField(path+".action", "must be one of create, topup, revoke, suspend, resume")
	}
	for name := range op.Set {
		if name != "action" && !slices.Contains(allowed, name) {
			return nil, badField(path+"."+name, "is not used by action %s", op.Action)
		}
	}
	keyField := path + ".key"
	switch op.Action {
	case "create":
		return a.doCreate(r, &op.keySpec, path, true)
	case "topup":
		return a.doTopUp(r, topUpRequest{Key: op.Key, Credits: op.Credits, Memo: op.Memo}, path)
	case "revoke":
		k, err := a.doRevoke(r, keyField, op.Key, true)
		if err != nil {
			return nil, err
		}
		return stateResponse{Message: "Key revoked", ID: k.ID, KeyMasked: k.Mask(), Status: statusRevoked, Revoked: true}, nil
	case "suspend":
		k, err := a.doSuspend(r, keyField, op.Key, op.Reason, true)
		if err != nil {
			return nil, err
		}
		return stateResponse{Message: "Key suspended", ID: k.ID, KeyMasked: k.Mask(), Status: keyStatus(k, a.now()), Suspended: true}, nil
	default: // resume
		k, err := a.doResume(r, keyField, op.Key, true)
		if err != nil {
			return nil, err
		}
		return stateResponse{Message: "Key resumed", ID: k.ID, KeyMasked: k.Mask(), Status: keyStatus(k, a.now())}, nil
	}
}
