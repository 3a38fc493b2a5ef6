// Package backup is paygate's backup file: a versioned JSON document
// holding a store.Snapshot (keys with their secret hashes and accounts,
// the ledger, admin keys, settings and optionally the audit trail) and a
// SHA-256 checksum of it. GET /admin/backup and "paygate backup" write it;
// POST /admin/restore and "paygate restore" read it with Decode, which
// verifies the format, the version, the checksum and every record before
// a store sees any of it.
//
// The layout, version 1:
//
//	{
//	"format": "paygate-backup",
//	"version": 1,
//	"createdAt": "2026-03-14T12:00:00Z",
//	"serverVersion": "1.2.3",
//	"store": "sqlite",
//	"data": {
//	"adminKeys": [ {...}, ... ],
//	"audit": [ {...}, ... ],          (only when asked for)
//	"keys": [ {..., "account": {...}}, ... ],
//	"ledger": [ {...}, ... ],
//	"settings": [ {"name": "...", "value": "<base64>"}, ... ],
//	"stats": {...}
//	},
//	"checksum": "sha256:<hex of SHA-256 over the RFC 8785 form of data>"
//	}
//
// Secrets are never in it: paygate stores only their SHA-256 hashes, and
// a restored key authenticates with the secret it had.
package backup

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/paygate/paygate/internal/store"
)

// Format and Version identify the file. Decode reads versions up to
// Version; a later version is refused with a message saying so.
const (
	Format  = "paygate-backup"
	Version = 1
)

// ErrInvalid matches every error Decode returns about the file's content
// (as opposed to an I/O error reading it).
var ErrInvalid = errors.New("invalid backup")

// Error lists what is wrong with a backup file. It matches ErrInvalid and
// store.ErrInvalid.
type Error struct {
	Problems []string
}

func (e *Error) Error() string { return "invalid backup: " + strings.Join(e.Problems, "; ") }

// Is makes errors.Is(err, ErrInvalid) and errors.Is(err, store.ErrInvalid)
// true.
func (e *Error) Is(target error) bool { return target == ErrInvalid || target == store.ErrInvalid }

func invalidf(format string, args ...any) *Error {
	return &Error{Problems: []string{fmt.Sprintf(format, args...)}}
}

// Meta is what Encode records about where a backup comes from.
type Meta struct {
	ServerVersion string
	Store         string // "sqlite", "redis"
}

// Info describes a backup file: its header and its stats.
type Info struct {
	Version       int
	CreatedAt     time.Time
	ServerVersion string
	Store         string
	Checksum      string
	Stats         Stats
}

// Stats counts what a backup holds.
type Stats struct {
	Keys          int   `json:"keys"`
	LedgerEntries int   `json:"ledgerEntries"`
	AdminKeys     int   `json:"adminKeys"`
	Settings      int   `json:"settings"`
	AuditEvents   int   `json:"auditEvents"`
	LastSeq       int64 `json:"lastSeq"`
	TotalBalance  int64 `json:"totalBalance"`
}

// ── records: the JSON form of each snapshot part ─────────────────────────

type keyRecord struct {
	ID              string            `json:"id"`
	Hash            string            `json:"hash"` // hex SHA-256 of the secret
	Prefix          string            `json:"prefix"`
	Suffix          string            `json:"suffix"`
	Name            string            `json:"name"`
	Namespace       string            `json:"namespace"`
	Alias           string            `json:"alias,omitempty"`
	Group           string            `json:"group,omitempty"`
	CreatedAt       string            `json:"createdAt"`
	ExpiresAt       string            `json:"expiresAt,omitempty"`
	Revoked         bool              `json:"revoked,omitempty"`
	RevokedAt       string            `json:"revokedAt,omitempty"`
	Suspended       bool              `json:"suspended,omitempty"`
	AllowedTools    []string          `json:"allowedTools,omitempty"`
	DeniedTools     []string          `json:"deniedTools,omitempty"`
	IPAllowlist     []string          `json:"ipAllowlist,omitempty"`
	SpendingLimit   int64             `json:"spendingLimit,omitempty"`
	Quota           *store.Quota      `json:"quota,omitempty"`
	RateLimitPerMin *int64            `json:"rateLimitPerMin,omitempty"`
	Tags            map[string]string `json:"tags,omitempty"`
	Account         accountRecord     `json:"account"`
}

type accountRecord struct {
	Balance        int64  `json:"balance"`
	Spent          int64  `json:"spent"`
	Calls          int64  `json:"calls"`
	LastUsedAt     string `json:"lastUsedAt,omitempty"`
	Day            int32  `json:"day,omitempty"`
	DailyCalls     int64  `json:"dailyCalls,omitempty"`
	DailyCredits   int64  `json:"dailyCredits,omitempty"`
	Month          int32  `json:"month,omitempty"`
	MonthlyCalls   int64  `json:"monthlyCalls,omitempty"`
	MonthlyCredits int64  `json:"monthlyCredits,omitempty"`
}

type entryRecord struct {
	Seq          int64  `json:"seq"`
	Time         string `json:"time"`
	KeyID        string `json:"keyId"`
	Kind         string `json:"kind"`
	Delta        int64  `json:"delta"`
	BalanceAfter int64  `json:"balanceAfter"`
	Tool         string `json:"tool,omitempty"`
	CallID       string `json:"callId,omitempty"`
	Item         int    `json:"item,omitempty"`
	RequestID    string `json:"requestId,omitempty"`
	Counterparty string `json:"counterparty,omitempty"`
	Actor        string `json:"actor,omitempty"`
	Note         string `json:"note,omitempty"`
}

type adminKeyRecord struct {
	ID         string `json:"id"`
	Hash       string `json:"hash"`
	Prefix     string `json:"prefix"`
	Suffix     string `json:"suffix"`
	Name       string `json:"name"`
	Role       string `json:"role"`
	CreatedAt  string `json:"createdAt"`
	CreatedBy  string `json:"createdBy,omitempty"`
	Revoked    bool   `json:"revoked,omitempty"`
	RevokedAt  string `json:"revokedAt,omitempty"`
	LastUsedAt string `json:"lastUsedAt,omitempty"`
}

type settingRecord struct {
	Name  string `json:"name"`
	Value []byte `json:"value"` // base64
}

type auditRecord struct {
	Seq       int64          `json:"seq"`
	Time      string         `json:"time"`
	Type      string         `json:"type"`
	Actor     string         `json:"actor,omitempty"`
	RequestID string         `json:"requestId,omitempty"`
	KeyMask   string         `json:"keyMask,omitempty"`
	Message   string         `json:"message,omitempty"`
	Metadata  map[string]any `json:"metadata,omitempty"`
}

// data is the "data" member as Decode reads it. Members absent from a
// file are empty.
type data struct {
	AdminKeys []adminKeyRecord `json:"adminKeys"`
	Audit     []auditRecord    `json:"audit"`
	Keys      []keyRecord      `json:"keys"`
	Ledger    []entryRecord    `json:"ledger"`
	Settings  []settingRecord  `json:"settings"`
	Stats     *Stats           `json:"stats"`
}

// header is the file's top level.
type header struct {
	Format        string          `json:"format"`
	Version       int             `json:"version"`
	CreatedAt     string          `json:"createdAt"`
	ServerVersion string          `json:"serverVersion"`
	Store         string          `json:"store"`
	Data          json.RawMessage `json:"data"`
	Checksum      string          `json:"checksum"`
}

const timeLayout = time.RFC3339Nano

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

// ── Encode ───────────────────────────────────────────────────────────────

// Encode writes snap as a backup file and returns what it wrote. It
// streams: one record per line, the checksum computed on the way and
// written after the data.
func Encode(w io.Writer, snap *store.Snapshot, meta Meta) (*Info, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	e := &encoder{w: bw, h: sha256.New()}
	info := &Info{Version: Version, CreatedAt: snap.TakenAt.UTC(), ServerVersion: meta.ServerVersion, Store: meta.Store}
	if info.CreatedAt.IsZero() {
		info.CreatedAt = time.Now().UTC()
	}
	st := &info.Stats
	st.Keys, st.LedgerEntries, st.AdminKeys = len(snap.Keys), len(snap.Ledger), len(snap.AdminKeys)
	st.Settings, st.AuditEvents = len(snap.Settings), len(snap.Audit)
	for _, ks := range snap.Keys {
		st.TotalBalance += ks.Account.Balance
	}
	if n := len(snap.Ledger); n > 0 {
		st.LastSeq = snap.Ledger[n-1].Seq
	}

	e.raw("{\n")
	e.member("format", Format, false)
	e.member("version", Version, false)
	e.member("createdAt", fmtTime(info.CreatedAt), false)
	e.member("serverVersion", meta.ServerVersion, false)
	e.member("store", meta.Store, false)
	e.raw("\"data\": {\n")
	e.hashRaw("{")
	// Members in RFC 8785 order, so the hashed stream is the canonical form.
	first := true
	section := func(name string, n int, rec func(i int) any) {
		if !first {
			e.raw(",\n")
			e.hashRaw(",")
		}
		first = false
		e.raw(fmt.Sprintf("%q: [", name))
		e.hashRaw(fmt.Sprintf("%q:[", name))
		for i := range n {
			if i > 0 {
				e.raw(",")
				e.hashRaw(",")
			}
			e.raw("\n")
			e.record(rec(i))
		}
		e.raw("\n]")
		e.hashRaw("]")
	}
	section("adminKeys", len(snap.AdminKeys), func(i int) any { return adminKeyOf(snap.AdminKeys[i]) })
	if snap.Audit != nil {
		section("audit", len(snap.Audit), func(i int) any { return auditOf(&snap.Audit[i]) })
	}
	section("keys", len(snap.Keys), func(i int) any { return keyOf(&snap.Keys[i]) })
	section("ledger", len(snap.Ledger), func(i int) any { return entryOf(&snap.Ledger[i]) })
	section("settings", len(snap.Settings), func(i int) any {
		return settingRecord{Name: snap.Settings[i].Name, Value: snap.Settings[i].Value}
	})
	e.raw(",\n\"stats\": ")
	e.hashRaw(",\"stats\":")
	e.record(st)
	e.raw("\n},\n")
	e.hashRaw("}")
	if e.err != nil {
		return nil, e.err
	}
	info.Checksum = "sha256:" + hex.EncodeToString(e.h.Sum(nil))
	e.member("checksum", info.Checksum, true)
	e.raw("}\n")
	if e.err != nil {
		return nil, e.err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	return info, nil
}

type encoder struct {
	w   *bufio.Writer
	h   hash.Hash
	err error
}

func (e *encoder) raw(s string) {
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}

func (e *encoder) hashRaw(s string) {
	if e.err == nil {
		e.h.Write([]byte(s))
	}
}

func (e *encoder) member(name string, v any, last bool) {
	b, err := marshal(v)
	if err != nil && e.err == nil {
		e.err = err
	}
	e.raw(fmt.Sprintf("%q: %s", name, b))
	if !last {
		e.raw(",")
	}
	e.raw("\n")
}

// record writes one record and adds its canonical form to the checksum.
func (e *encoder) record(v any) {
	if e.err != nil {
		return
	}
	b, err := marshal(v)
	if err != nil {
		e.err = err
		return
	}
	c, err := canonicalJSON(b)
	if err != nil {
		e.err = err
		return
	}
	e.h.Write(c)
	_, e.err = e.w.Write(b)
}

func keyOf(ks *store.KeyState) keyRecord {
	k, a := ks.Key, &ks.Account
	r := keyRecord{
		ID: k.ID, Hash: hex.EncodeToString(k.Hash[:]), Prefix: k.Prefix, Suffix: k.Suffix, Name: k.Name,
		Namespace: k.Namespace, Alias: k.Alias, Group: k.Group, CreatedAt: fmtTime(k.CreatedAt),
		ExpiresAt: fmtTime(k.ExpiresAt), Revoked: k.Revoked, RevokedAt: fmtTime(k.RevokedAt), Suspended: k.Suspended,
		AllowedTools: k.AllowedTools, DeniedTools: k.DeniedTools, SpendingLimit: k.SpendingLimit, Quota: k.Quota,
		RateLimitPerMin: k.RateLimitPerMin, Tags: k.Tags,
		Account: accountRecord{Balance: a.Balance, Spent: a.Spent, Calls: a.Calls, LastUsedAt: fmtTime(a.LastUsedAt),
			Day: a.Day, DailyCalls: a.DailyCalls, DailyCredits: a.DailyCredits, Month: a.Month,
			MonthlyCalls: a.MonthlyCalls, MonthlyCredits: a.MonthlyCredits},
	}
	for _, p := range k.IPAllowlist {
		r.IPAllowlist = append(r.IPAllowlist, p.String())
	}
	return r
}

func entryOf(e *store.Entry) entryRecord {
	return entryRecord{Seq: e.Seq, Time: fmtTime(e.Time), KeyID: e.KeyID, Kind: string(e.Kind), Delta: e.Delta,
		BalanceAfter: e.BalanceAfter, Tool: e.Tool, CallID: e.CallID, Item: e.Item, RequestID: e.RequestID,
		Counterparty: e.Counterparty, Actor: e.Actor, Note: e.Note}
}

func adminKeyOf(k *store.AdminKey) adminKeyRecord {
	return adminKeyRecord{ID: k.ID, Hash: hex.EncodeToString(k.Hash[:]), Prefix: k.Prefix, Suffix: k.Suffix, Name: k.Name,
		Role: string(k.Role), CreatedAt: fmtTime(k.CreatedAt), CreatedBy: k.CreatedBy, Revoked: k.Revoked,
		RevokedAt: fmtTime(k.RevokedAt), LastUsedAt: fmtTime(k.LastUsed)}
}

func auditOf(a *store.AuditEvent) auditRecord {
	return auditRecord{Seq: a.Seq, Time: fmtTime(a.Time), Type: a.Type, Actor: a.Actor, RequestID: a.RequestID,
		KeyMask: a.KeyMask, Message: a.Message, Metadata: a.Metadata}
}

// ── Decode ───────────────────────────────────────────────────────────────

// maxProblems bounds the problems one Decode reports.
const maxProblems = 20

// Decode reads a backup file and returns its snapshot once everything
// checks out: the format and version, the checksum (recomputed from the
// decoded records, so a file re-indented by a tool still verifies while
// any changed value does not), the stats, every record's fields, and the
// snapshot's own consistency (store.Snapshot.Validate: unique ids and
// hashes, the ledger reconciling with the balances). Any problem returns
// an error matching ErrInvalid and no snapshot.
//
// An error reading r is returned as it is (wrapped), not as ErrInvalid.
func Decode(r io.Reader) (*store.Snapshot, *Info, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("read backup: %w", err)
	}
	var h header
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, nil, invalidf("not a paygate backup file: %v", jsonProblem(err))
	}
	if dec.More() {
		return nil, nil, invalidf("not a paygate backup file: extra data after the document")
	}
	switch {
	case h.Format != Format:
		return nil, nil, invalidf("not a paygate backup file: format is %q, want %q", h.Format, Format)
	case h.Version > Version:
		return nil, nil, invalidf("backup version %d was written by a newer paygate; this one reads up to version %d", h.Version, Version)
	case h.Version < 1:
		return nil, nil, invalidf("backup version %d is not valid", h.Version)
	case len(h.Data) == 0:
		return nil, nil, invalidf("the data member is missing")
	case h.Checksum == "":
		return nil, nil, invalidf("the checksum is missing")
	}
	info := &Info{Version: h.Version, ServerVersion: h.ServerVersion, Store: h.Store, Checksum: h.Checksum}
	if info.CreatedAt, err = time.Parse(timeLayout, h.CreatedAt); err != nil {
		return nil, nil, invalidf("createdAt %q is not an RFC 3339 time", h.CreatedAt)
	}

	var d data
	ddec := json.NewDecoder(bytes.NewReader(h.Data))
	ddec.DisallowUnknownFields()
	if err := ddec.Decode(&d); err != nil {
		return nil, nil, invalidf("data: %v", jsonProblem(err))
	}
	sum, err := checksumOf(&d)
	if err != nil {
		return nil, nil, invalidf("data: %v", err)
	}
	if sum != h.Checksum {
		return nil, nil, invalidf("checksum mismatch: the file says %s but its data hashes to %s; the backup is corrupted or was edited",
			h.Checksum, sum)
	}
	if d.Stats == nil {
		return nil, nil, invalidf("data.stats is missing")
	}
	info.Stats = *d.Stats

	var p problems
	snap := d.snapshot(&p, info.CreatedAt)
	if err := p.err(); err != nil {
		return nil, nil, err
	}
	checkStats(&p, snap, d.Stats)
	if err := p.err(); err != nil {
		return nil, nil, err
	}
	if err := snap.Validate(); err != nil {
		var se *store.SnapshotError
		if errors.As(err, &se) {
			probs := se.Problems
			if se.More > 0 {
				probs = append(probs, fmt.Sprintf("and %d more", se.More))
			}
			return nil, nil, &Error{Problems: probs}
		}
		return nil, nil, &Error{Problems: []string{err.Error()}}
	}
	return snap, info, nil
}

// checksumOf recomputes the checksum of decoded data: the canonical form
// of each record, in the order Encode writes them.
func checksumOf(d *data) (string, error) {
	h := sha256.New()
	var err error
	write := func(s string) { h.Write([]byte(s)) }
	rec := func(v any) {
		if err != nil {
			return
		}
		var c []byte
		if c, err = canonicalOf(v); err == nil {
			h.Write(c)
		}
	}
	first := true
	section := func(name string, n int, at func(i int) any) {
		if !first {
			write(",")
		}
		first = false
		write(fmt.Sprintf("%q:[", name))
		for i := range n {
			if i > 0 {
				write(",")
			}
			rec(at(i))
		}
		write("]")
	}
	write("{")
	section("adminKeys", len(d.AdminKeys), func(i int) any { return d.AdminKeys[i] })
	if d.Audit != nil {
		section("audit", len(d.Audit), func(i int) any { return d.Audit[i] })
	}
	section("keys", len(d.Keys), func(i int) any { return d.Keys[i] })
	section("ledger", len(d.Ledger), func(i int) any { return d.Ledger[i] })
	section("settings", len(d.Settings), func(i int) any { return d.Settings[i] })
	write(`,"stats":`)
	if d.Stats == nil {
		write("null")
	} else {
		rec(d.Stats)
	}
	write("}")
	if err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// jsonProblem describes a decoding error without Go type names where it
// can.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("%s must be a JSON %s, got %s", fieldPath(te.Field), jsonType(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the file ends early (truncated?)"
	}
	return err.Error()
}

func fieldPath(f string) string {
	if f == "" {
		return "a value"
	}
	return f
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct":
		return "object"
	}
	return "number"
}

type problems struct{ list []string }

func (p *problems) addf(format string, args ...any) {
	if len(p.list) < maxProblems {
		p.list = append(p.list, fmt.Sprintf(format, args...))
	} else if len(p.list) == maxProblems {
		p.list = append(p.list, "and more")
	}
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &Error{Problems: p.list}
}

func (p *problems) time(where, s string, required bool) time.Time {
	if s == "" {
		if required {
			p.addf("%s is missing", where)
		}
		return time.Time{}
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		p.addf("%s: %q is not an RFC 3339 time", where, s)
	}
	return t.UTC()
}

func (p *problems) hash(where, s string) store.Hash {
	var h store.Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		p.addf("%s: must be 64 hex digits (a SHA-256)", where)
		return h
	}
	copy(h[:], b)
	return h
}

// snapshot converts the records, reporting every field that does not
// parse.
func (d *data) snapshot(p *problems, createdAt time.Time) *store.Snapshot {
	s := &store.Snapshot{TakenAt: createdAt}
	s.Keys = make([]store.KeyState, len(d.Keys))
	for i := range d.Keys {
		r := &d.Keys[i]
		where := fmt.Sprintf("data.keys[%d]", i)
		k := &store.Key{
			ID: r.ID, Hash: p.hash(where+".hash", r.Hash), Prefix: r.Prefix, Suffix: r.Suffix, Name: r.Name,
			Namespace: r.Namespace, Alias: r.Alias, Group: r.Group, CreatedAt: p.time(where+".createdAt", r.CreatedAt, true),
			ExpiresAt: p.time(where+".expiresAt", r.ExpiresAt, false), Revoked: r.Revoked,
			RevokedAt: p.time(where+".revokedAt", r.RevokedAt, false), Suspended: r.Suspended,
			AllowedTools: r.AllowedTools, DeniedTools: r.DeniedTools, SpendingLimit: r.SpendingLimit, Quota: r.Quota,
			RateLimitPerMin: r.RateLimitPerMin, Tags: r.Tags,
		}
		for j, ip := range r.IPAllowlist {
			pfx, err := netip.ParsePrefix(ip)
			if err != nil {
				p.addf("%s.ipAllowlist[%d]: %q is not a CIDR", where, j, ip)
				continue
			}
			k.IPAllowlist = append(k.IPAllowlist, pfx)
		}
		a := &r.Account
		s.Keys[i] = store.KeyState{Key: k, Account: store.Account{
			Balance: a.Balance, Spent: a.Spent, Calls: a.Calls, LastUsedAt: p.time(where+".account.lastUsedAt", a.LastUsedAt, false),
			Day: a.Day, DailyCalls: a.DailyCalls, DailyCredits: a.DailyCredits, Month: a.Month,
			MonthlyCalls: a.MonthlyCalls, MonthlyCredits: a.MonthlyCredits,
		}}
	}
	s.Ledger = make([]store.Entry, len(d.Ledger))
	for i := range d.Ledger {
		r := &d.Ledger[i]
		s.Ledger[i] = store.Entry{Seq: r.Seq, Time: p.time(fmt.Sprintf("data.ledger[%d].time", i), r.Time, true),
			KeyID: r.KeyID, Kind: store.EntryKind(r.Kind), Delta: r.Delta, BalanceAfter: r.BalanceAfter, Tool: r.Tool,
			CallID: r.CallID, Item: r.Item, RequestID: r.RequestID, Counterparty: r.Counterparty, Actor: r.Actor, Note: r.Note}
	}
	s.AdminKeys = make([]*store.AdminKey, len(d.AdminKeys))
	for i := range d.AdminKeys {
		r := &d.AdminKeys[i]
		where := fmt.Sprintf("data.adminKeys[%d]", i)
		s.AdminKeys[i] = &store.AdminKey{ID: r.ID, Hash: p.hash(where+".hash", r.Hash), Prefix: r.Prefix, Suffix: r.Suffix,
			Name: r.Name, Role: store.AdminRole(r.Role), CreatedAt: p.time(where+".createdAt", r.CreatedAt, true),
			CreatedBy: r.CreatedBy, Revoked: r.Revoked, RevokedAt: p.time(where+".revokedAt", r.RevokedAt, false),
			LastUsed: p.time(where+".lastUsedAt", r.LastUsedAt, false)}
	}
	s.Settings = make([]store.Setting, len(d.Settings))
	for i, r := range d.Settings {
		s.Settings[i] = store.Setting{Name: r.Name, Value: r.Value}
	}
	if d.Audit != nil {
		s.Audit = make([]store.AuditEvent, len(d.Audit))
		for i := range d.Audit {
			r := &d.Audit[i]
			s.Audit[i] = store.AuditEvent{Seq: r.Seq, Time: p.time(fmt.Sprintf("data.audit[%d].time", i), r.Time, true),
				Type: r.Type, Actor: r.Actor, RequestID: r.RequestID, KeyMask: r.KeyMask, Message: r.Message, Metadata: r.Metadata}
		}
	}
	return s
}

// checkStats compares the stats with what the data holds: a file cut
// short in a way that still parses would show here.
func checkStats(p *problems, s *store.Snapshot, st *Stats) {
	var total int64
	for _, ks := range s.Keys {
		total += ks.Account.Balance
	}
	var last int64
	if n := len(s.Ledger); n > 0 {
		last = s.Ledger[n-1].Seq
	}
	got := Stats{Keys: len(s.Keys), LedgerEntries: len(s.Ledger), AdminKeys: len(s.AdminKeys), Settings: len(s.Settings),
		AuditEvents: len(s.Audit), LastSeq: last, TotalBalance: total}
	if got != *st {
		p.addf("data.stats %+v does not match the data, which holds %+v", *st, got)
	}
}
