package admin

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

func (a *API) creditRoutes() []Route {
	return []Route{
		{Method: "POST", Pattern: "/topup", Role: store.RoleAdmin, Handler: a.topUp, Doc: Doc{
			Tag: "credits", Summary: "Add credits to a key", Request: topUpRequest{}, Response: topUpResponse{},
		}},
		{Method: "POST", Pattern: "/keys/transfer", Role: store.RoleAdmin, Handler: a.transfer, Doc: Doc{
			Tag: "credits", Summary: "Move credits between two keys atomically",
			Description: "Both keys must exist and not be revoked or expired; the source must hold the credits.",
			Request:     transferRequest{}, Response: transferResponse{},
		}},
		{Method: "GET", Pattern: "/keys/credit-history", Role: store.RoleViewer, Handler: a.creditHistory, Doc: Doc{
			Tag: "credits", Summary: "A key's ledger, newest first",
			Description: "Every credit movement with balanceBefore and balanceAfter. amount is signed: charges and " +
				"transfers out are negative.",
			Query: []Param{
				{Name: "key", Type: "string", Required: true, Description: "key id, secret or alias"},
				{Name: "type", Type: "string", Enum: historyTypeNames()},
				{Name: "limit", Type: "integer", Description: "1 to 1000 (default 100)"},
				{Name: "since", Type: "string", Description: "RFC 3339"},
			},
			Response: historyResponse{},
		}},
	}
}

// waitDurable blocks until a receipt's entries are durable.
func waitDurable(r *http.Request, recs ...*store.Receipt) error {
	for _, rec := range recs {
		if err := rec.Wait(r.Context()); err != nil {
			return err
		}
	}
	return nil
}

type topUpRequest struct {
	Key     string         `json:"key"`
	Credits credits.Amount `json:"credits"`
	Memo    string         `json:"memo"`
}

type topUpResponse struct {
	ID           string          `json:"id"`
	KeyMasked    string          `json:"keyMasked"`
	CreditsAdded credits.Credits `json:"creditsAdded"`
	NewBalance   credits.Credits `json:"newBalance"`
	Credits      credits.Credits `json:"credits"` // the new balance, under paygate-mcp's name
	Message      string          `json:"message"`
}

func (a *API) topUp(w http.ResponseWriter, r *http.Request) error {
	var req topUpRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	res, err := a.doTopUp(r, req, "")
	if err != nil {
		return err
	}
	return reply(w, r, http.StatusOK, res)
}

// doTopUp validates and applies one top-up; shared with bulk. path
// prefixes field names.
func (a *API) doTopUp(r *http.Request, req topUpRequest, path string) (topUpResponse, error) {
	amount := credits.Credits(req.Credits)
	if amount <= 0 {
		return topUpResponse{}, badField(joinPath(path, "credits"), "must be a positive whole number")
	}
	memo, err := checkText(joinPath(path, "memo"), req.Memo, maxTextLen)
	if err != nil {
		return topUpResponse{}, err
	}
	k, _, err := a.resolveKey(r.Context(), joinPath(path, "key"), req.Key)
	if err != nil {
		return topUpResponse{}, err
	}
	if err := requireLive(joinPath(path, "key"), k); err != nil {
		return topUpResponse{}, err
	}
	rc := state(r)
	rec, err := a.st.TopUp(r.Context(), k.ID, amount, store.EntryTopUp, rc.meta(memo))
	if err != nil {
		return topUpResponse{}, withField(err, joinPath(path, "credits"))
	}
	if err := waitDurable(r, rec); err != nil {
		return topUpResponse{}, err
	}
	meta := map[string]any{"creditsAdded": amount, "newBalance": rec.BalanceAfter}
	if memo != "" {
		meta["memo"] = memo
	}
	if path != "" {
		meta["bulk"] = true
	}
	a.audit(r, "key.topup", k, "credits added", meta)
	return topUpResponse{ID: k.ID, KeyMasked: k.Mask(), CreditsAdded: amount, NewBalance: rec.BalanceAfter,
		Credits: rec.BalanceAfter, Message: "Credits added"}, nil
}

// withField classifies a store error for the request field it concerns.
func withField(err error, field string) error {
	if isAdminError(err) {
		return err
	}
	e := classify(err, field)
	if e.Code == CodeInternal || e.Code == CodeUnavailable {
		return err
	}
	return e
}

type transferRequest struct {
	From    string         `json:"from"`
	To      string         `json:"to"`
	Credits credits.Amount `json:"credits"`
	Memo    string         `json:"memo"`
}

type transferSide struct {
	ID        string          `json:"id"`
	KeyMasked string          `json:"keyMasked"`
	Balance   credits.Credits `json:"balance"`
}

type transferResponse struct {
	Transferred credits.Credits `json:"transferred"`
	From        transferSide    `json:"from"`
	To          transferSide    `json:"to"`
	Memo        string          `json:"memo,omitempty"`
	Message     string          `json:"message"`
}

func (a *API) transfer(w http.ResponseWriter, r *http.Request) error {
	var req transferRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	amount := credits.Credits(req.Credits)
	if amount <= 0 {
		return badField("credits", "must be a positive whole number")
	}
	memo, err := checkText("memo", req.Memo, maxTextLen)
	if err != nil {
		return err
	}
	from, _, err := a.resolveKey(r.Context(), "from", req.From)
	if err != nil {
		return err
	}
	to, _, err := a.resolveKey(r.Context(), "to", req.To)
	if err != nil {
		return err
	}
	now := a.now()
	switch {
	case from.ID == to.ID:
		return badField("to", "must be a different key than from")
	case from.Revoked:
		return conflict("from", "key %s is revoked", from.ID)
	case to.Revoked:
		return conflict("to", "key %s is revoked", to.ID)
	case from.Expired(now):
		return conflict("from", "key %s is expired", from.ID)
	case to.Expired(now):
		return conflict("to", "key %s is expired", to.ID)
	}
	out, in, err := a.st.Transfer(r.Context(), from.ID, to.ID, amount, state(r).meta(memo))
	if err != nil {
		if errors.Is(err, store.ErrInsufficientCredits) {
			var le *store.LimitError
			errors.As(err, &le)
			return badField("credits", "insufficient credits: %s holds %d, transfer needs %d", from.ID, le.Have, amount)
		}
		return withField(err, "credits")
	}
	if err := waitDurable(r, out, in); err != nil {
		return err
	}
	a.audit(r, "credit.transfer", from, "credits transferred",
		map[string]any{"credits": amount, "toKeyId": to.ID, "toKeyMasked": to.Mask(),
			"fromBalance": out.BalanceAfter, "toBalance": in.BalanceAfter, "memo": memo})
	return reply(w, r, http.StatusOK, transferResponse{
		Transferred: amount,
		From:        transferSide{ID: from.ID, KeyMasked: from.Mask(), Balance: out.BalanceAfter},
		To:          transferSide{ID: to.ID, KeyMasked: to.Mask(), Balance: in.BalanceAfter},
		Memo:        memo, Message: "Transferred " + strconv.FormatInt(amount, 10) + " credits",
	})
}

// historyTypes maps paygate-mcp's credit-history type names to ledger
// kinds.
var historyTypes = []struct {
	name string
	kind store.EntryKind
}{
	{"initial", store.EntryGrant},
	{"topup", store.EntryTopUp},
	{"transfer_in", store.EntryTransferIn},
	{"transfer_out", store.EntryTransferOut},
	{"deduction", store.EntryCharge},
	{"refund", store.EntryRefund},
	{"adjustment", store.EntryAdjustment},
}

func historyTypeNames() []string {
	out := make([]string, len(historyTypes))
	for i, h := range historyTypes {
		out[i] = h.name
	}
	return out
}

func historyType(k store.EntryKind) string {
	for _, h := range historyTypes {
		if h.kind == k {
			return h.name
		}
	}
	return string(k)
}

type historyEntry struct {
	Seq           int64           `json:"seq"`
	Timestamp     string          `json:"timestamp"`
	Type          string          `json:"type"`
	Amount        credits.Credits `json:"amount"`
	BalanceBefore credits.Credits `json:"balanceBefore"`
	BalanceAfter  credits.Credits `json:"balanceAfter"`
	Tool          string          `json:"tool,omitempty"`
	CallID        string          `json:"callId,omitempty"`
	Counterparty  string          `json:"counterparty,omitempty"`
	Memo          string          `json:"memo,omitempty"`
	Actor         string          `json:"actor,omitempty"`
	RequestID     string          `json:"requestId,omitempty"`
}

type historyResponse struct {
	ID             string          `json:"id"`
	Key            string          `json:"key"` // masked
	Name           string          `json:"name"`
	CurrentBalance credits.Credits `json:"currentBalance"`
	TotalEntries   int             `json:"totalEntries"`
	Entries        []historyEntry  `json:"entries"`
}

func (a *API) creditHistory(w http.ResponseWriter, r *http.Request) error {
	q := queryOf(r)
	limit, err := q.intIn("limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	since, err := q.time("since")
	if err != nil {
		return err
	}
	f := store.LedgerFilter{Limit: limit, Since: since, Desc: true}
	if t := q.str("type"); t != "" {
		i := slices.IndexFunc(historyTypes, func(h struct {
			name string
			kind store.EntryKind
		}) bool {
			return h.name == t || string(h.kind) == t
		})
		if i < 0 {
			return badField("type", "must be one of %v", historyTypeNames())
		}
		f.Kinds = []store.EntryKind{historyTypes[i].kind}
	}
	k, acct, err := a.resolveKey(r.Context(), "key", q.str("key"))
	if err != nil {
		return err
	}
	f.KeyID = k.ID
	es, err := a.st.Entries(r.Context(), f)
	if err != nil {
		return err
	}
	out := historyResponse{ID: k.ID, Key: k.Mask(), Name: k.Name, CurrentBalance: acct.Balance,
		TotalEntries: len(es), Entries: make([]historyEntry, len(es))}
	for i, e := range es {
		out.Entries[i] = historyEntry{Seq: e.Seq, Timestamp: fmtTime(e.Time), Type: historyType(e.Kind), Amount: e.Delta,
			BalanceBefore: e.BalanceAfter - e.Delta, BalanceAfter: e.BalanceAfter, Tool: e.Tool, CallID: e.CallID,
			Counterparty: e.Counterparty, Memo: e.Note, Actor: e.Actor, RequestID: e.RequestID}
	}
	return reply(w, r, http.StatusOK, out)
}
