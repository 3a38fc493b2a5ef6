package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/ratelimit"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/sqlite"
)

// t0 is the tests' clock start.
var t0 = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// fixture is an admin API over a real in-memory SQLite store, with one
// admin key per role. At cleanup it checks that no secret leaked: each
// secret may appear in exactly one response (the one that created it),
// and never in the audit trail or the log.
type fixture struct {
	t       *testing.T
	st      *sqlite.Store
	api     *API
	h       http.Handler
	clock   *clock
	limiter *ratelimit.Local
	logs    *syncBuffer
	policy  *policy.Snapshot

	super, admin, viewer string // admin key secrets
	superID              string

	closed bool // the test closed the store itself

	mu        sync.Mutex
	responses []recorded
	observed  []Observation
}

type recorded struct {
	method, path string
	status       int
	body         string
}

type fixtureOpt func(*Options)

func newFixture(t *testing.T, opts ...fixtureOpt) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: &clock{t: t0}, logs: &syncBuffer{}, limiter: ratelimit.NewLocal(ratelimit.Options{})}
	st, err := sqlite.Open(context.Background(), sqlite.Options{InMemory: true, Now: f.clock.Now, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	f.st = st
	perTool := int64(5)
	f.policy = policy.MustNew(policy.Settings{ToolPricing: map[string]policy.ToolPolicy{"search": {RateLimitPerMin: perTool}}})
	o := Options{
		Store: st, Policy: func() *policy.Snapshot { return f.policy }, Limiter: f.limiter,
		Logger: slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    f.clock.Now,
		Observe: func(o Observation) {
			f.mu.Lock()
			f.observed = append(f.observed, o)
			f.mu.Unlock()
		},
	}
	for _, fn := range opts {
		fn(&o)
	}
	f.api = New(o)
	f.h = f.api.Handler()
	f.superID, f.super = f.addAdmin(store.RoleSuperAdmin)
	_, f.admin = f.addAdmin(store.RoleAdmin)
	_, f.viewer = f.addAdmin(store.RoleViewer)
	t.Cleanup(func() {
		if f.closed {
			return
		}
		f.checkNoLeaks()
		if err := st.Verify(context.Background()); err != nil {
			t.Errorf("store Verify: %v", err)
		}
		st.Close()
	})
	return f
}

// addAdmin stores an admin key directly and returns its id and secret.
func (f *fixture) addAdmin(role store.AdminRole) (string, string) {
	f.t.Helper()
	sec, err := keys.GenerateAdmin(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	id, _ := keys.NewAdminID(nil)
	if err := f.st.CreateAdminKey(context.Background(), &store.AdminKey{ID: id, Hash: sec.Hash, Prefix: sec.Prefix,
		Suffix: sec.Suffix, Name: string(role), Role: role, CreatedAt: t0}); err != nil {
		f.t.Fatal(err)
	}
	return id, sec.Plain
}

type resp struct {
	status int
	header http.Header
	body   string
}

// json decodes the body into a generic value.
func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %v\n%s", r.status, err, r.body)
	}
	return m
}

// req sends a request with an admin key (adminKey "" sends none) and
// records the response for the leak check.
func (f *fixture) req(method, path, adminKey, body string, hdr ...string) resp {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	if adminKey != "" {
		r.Header.Set("X-Admin-Key", adminKey)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	out := resp{status: w.Code, header: w.Header(), body: w.Body.String()}
	f.mu.Lock()
	f.responses = append(f.responses, recorded{method, path, w.Code, out.body})
	f.mu.Unlock()
	return out
}

func (f *fixture) post(path, body string) resp {
	f.t.Helper()
	return f.req("POST", path, f.admin, body)
}

func (f *fixture) get(path string) resp { f.t.Helper(); return f.req("GET", path, f.admin, "") }

// mustOK fails unless the response has status want.
func mustStatus(t *testing.T, r resp, want int) map[string]any {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
	}
	if strings.HasPrefix(r.body, "[") {
		return nil
	}
	return r.json(t)
}

// newKey creates a key through the API and returns its id and secret.
func (f *fixture) newKey(body string) (id, secret string) {
	f.t.Helper()
	m := mustStatus(f.t, f.post("/keys", body), http.StatusCreated)
	return m["id"].(string), m["key"].(string)
}

// snapshot is the store state a refused request must leave unchanged:
// every key with its account, every ledger entry and every admin key.
func (f *fixture) snapshot() string {
	f.t.Helper()
	ctx := context.Background()
	vs, _, err := f.st.ListKeys(ctx, store.KeyFilter{Now: f.clock.Now()})
	if err != nil {
		f.t.Fatal(err)
	}
	es, err := f.st.Entries(ctx, store.LedgerFilter{})
	if err != nil {
		f.t.Fatal(err)
	}
	aks, err := f.st.ListAdminKeys(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"keys": vs, "ledger": es, "admins": aks})
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

// unchanged fails if the store differs from before.
func (f *fixture) unchanged(before string) {
	f.t.Helper()
	if after := f.snapshot(); after != before {
		f.t.Fatalf("store changed by a refused request:\nbefore %s\nafter  %s", before, after)
	}
}

// audit returns the audit events of type typ.
func (f *fixture) audit(typ string) []store.AuditEvent {
	f.t.Helper()
	evs, err := f.st.Audit(context.Background(), store.AuditFilter{Types: []string{typ}})
	if err != nil {
		f.t.Fatal(err)
	}
	return evs
}

var secretRE = regexp.MustCompile(`(pg|ak)_[0-9a-f]{48}`)

// creationRoutes may show a secret: the one they create.
var creationRoutes = map[string]bool{
	"POST /keys": true, "POST /keys/rotate": true, "POST /keys/clone": true, "POST /keys/bulk": true, "POST /admin/keys": true,
}

func (f *fixture) checkNoLeaks() {
	t := f.t
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]int{}
	for i, r := range f.responses {
		for _, s := range secretRE.FindAllString(r.body, -1) {
			if j, ok := seen[s]; ok && j != i {
				t.Errorf("secret %s... shown again by %s %s (first by response %d)", s[:7], r.method, r.path, j)
			}
			seen[s] = i
			if !creationRoutes[r.method+" "+strings.SplitN(r.path, "?", 2)[0]] || r.status >= 300 {
				t.Errorf("secret %s... in a response of %s %s (%d)", s[:7], r.method, r.path, r.status)
			}
		}
	}
	for _, s := range []string{f.super, f.admin, f.viewer} {
		if _, ok := seen[s]; ok {
			t.Errorf("an admin key given to the test was shown in a response")
		}
	}
	evs, err := f.st.Audit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Errorf("audit: %v", err)
		return
	}
	b, _ := json.Marshal(evs)
	if m := secretRE.FindString(string(b)); m != "" {
		t.Errorf("secret %s... in the audit trail", m[:7])
	}
	if m := secretRE.FindString(f.logs.String()); m != "" {
		t.Errorf("secret %s... in the log", m[:7])
	}
}

// errBody checks an error response: status, code and field.
func errBody(t *testing.T, r resp, status int, code, field string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	var e struct{ Error, Code, Field string }
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("error body is not JSON: %s", r.body)
	}
	if e.Error == "" || e.Code != code || e.Field != field {
		t.Fatalf("error = %+v, want code %q field %q", e, code, field)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
