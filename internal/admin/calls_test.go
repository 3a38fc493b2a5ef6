package admin

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/cache"
	"github.com/paygate/paygate/internal/gate"
	"github.com/paygate/paygate/internal/toolalias"
)

// callFixture is an admin API over real call controls.
func callFixture(t *testing.T) (*fixture, CallControls) {
	t.Helper()
	cc, err := gate.NewConcurrency(gate.ConcurrencyLimits{PerKey: 2})
	if err != nil {
		t.Fatal(err)
	}
	calls := CallControls{Concurrency: cc, Cache: cache.New(cache.Options{MaxEntries: 10, MaxBytes: 1 << 20}), Aliases: &toolalias.Table{}}
	return newFixture(t, func(o *Options) { o.Calls = calls }), calls
}

func TestConcurrencyRoutes(t *testing.T) {
	f, calls := callFixture(t)
	m := mustStatus(t, f.req("GET", "/admin/concurrency", f.viewer, ""), http.StatusOK)
	if m["maxConcurrentPerKey"] != 2.0 || m["rejections"] != 0.0 || m["inFlight"] == nil {
		t.Fatalf("status %v", m)
	}
	if r := f.req("POST", "/admin/concurrency", f.viewer, `{"maxConcurrentPerKey":1}`); r.status != http.StatusForbidden {
		t.Fatalf("viewer update: %d", r.status)
	}
	errBody(t, f.post("/admin/concurrency", `{}`), http.StatusBadRequest, CodeBadRequest, "")
	errBody(t, f.post("/admin/concurrency", `{"maxConcurrentPerKey":-1}`), http.StatusBadRequest, CodeBadRequest, "maxConcurrentPerKey")
	errBody(t, f.post("/admin/concurrency", `{"tools":{"search":1.5}}`), http.StatusBadRequest, CodeBadRequest, "tools.search")

	m = mustStatus(t, f.post("/admin/concurrency", `{"tools":{"search":3,"fetch":1}}`), http.StatusOK)
	if tools := m["tools"].(map[string]any); m["maxConcurrentPerKey"] != 2.0 || tools["search"] != 3.0 || tools["fetch"] != 1.0 {
		t.Fatalf("after adding tool caps: %v", m)
	}
	m = mustStatus(t, f.post("/admin/concurrency", `{"maxConcurrentPerKey":0,"tools":{"fetch":0}}`), http.StatusOK)
	if tools := m["tools"].(map[string]any); m["maxConcurrentPerKey"] != 0.0 || len(tools) != 1 {
		t.Fatalf("after removing caps: %v", m)
	}
	if l := calls.Concurrency.(*gate.Concurrency).Limits(); l.PerKey != 0 || l.Tools["search"] != 3 {
		t.Fatalf("limiter %+v", l)
	}
	if evs := f.audit("concurrency.updated"); len(evs) != 2 {
		t.Fatalf("%d concurrency.updated events", len(evs))
	}
}

func TestCacheRoutes(t *testing.T) {
	f, calls := callFixture(t)
	c := calls.Cache.(*cache.Cache)
	for i, tool := range []string{"a", "a", "b"} {
		k, _ := cache.NewKey("s", tool, json.RawMessage(`{"i":`+string(rune('0'+i))+`}`))
		c.Put(k, tool, json.RawMessage(`{"content":[]}`), time.Hour)
		c.Get(k)
	}
	m := mustStatus(t, f.req("GET", "/admin/cache", f.viewer, ""), http.StatusOK)
	if m["entries"] != 3.0 || m["hits"] != 3.0 || m["hitRate"] != 1.0 || m["tools"].(map[string]any)["a"] != 2.0 {
		t.Fatalf("stats %v", m)
	}
	if r := f.req("DELETE", "/admin/cache", f.viewer, ""); r.status != http.StatusForbidden {
		t.Fatalf("viewer clear: %d", r.status)
	}
	m = mustStatus(t, f.req("DELETE", "/admin/cache?tool=a", f.admin, ""), http.StatusOK)
	if m["cleared"] != 2.0 || m["tool"] != "a" || m["stats"].(map[string]any)["entries"] != 1.0 {
		t.Fatalf("clear a: %v", m)
	}
	m = mustStatus(t, f.req("DELETE", "/admin/cache", f.admin, ""), http.StatusOK)
	if m["cleared"] != 1.0 || m["stats"].(map[string]any)["entries"] != 0.0 {
		t.Fatalf("clear all: %v", m)
	}
	if evs := f.audit("cache.cleared"); len(evs) != 2 {
		t.Fatalf("%d cache.cleared events", len(evs))
	}
}

func TestToolAliasRoutes(t *testing.T) {
	f, _ := callFixture(t)
	m := mustStatus(t, f.req("GET", "/admin/tool-aliases", f.viewer, ""), http.StatusOK)
	if as := m["aliases"].([]any); len(as) != 0 {
		t.Fatalf("aliases %v", m)
	}
	m = mustStatus(t, f.post("/admin/tool-aliases", `{"from":"old_search","to":"search","sunset":"2027-01-01T00:00:00Z"}`), http.StatusOK)
	as := m["aliases"].([]any)
	if len(as) != 1 || as[0].(map[string]any)["to"] != "search" || as[0].(map[string]any)["sunset"] != "2027-01-01T00:00:00Z" {
		t.Fatalf("after set: %v", m)
	}
	errBody(t, f.post("/admin/tool-aliases", `{"from":"older","to":"old_search"}`), http.StatusBadRequest, CodeBadRequest, "to")
	errBody(t, f.post("/admin/tool-aliases", `{"from":"search","to":"x"}`), http.StatusBadRequest, CodeBadRequest, "to")
	errBody(t, f.post("/admin/tool-aliases", `{"from":"x"}`), http.StatusBadRequest, CodeBadRequest, "to")
	errBody(t, f.post("/admin/tool-aliases", `{"from":"x","to":"y","link":"nope"}`), http.StatusBadRequest, CodeBadRequest, "link")
	errBody(t, f.post("/admin/tool-aliases", `{"from":"x","to":"y","sunset":"tomorrow"}`), http.StatusBadRequest, CodeBadRequest, "sunset")

	errBody(t, f.req("DELETE", "/admin/tool-aliases?from=nope", f.admin, ""), http.StatusNotFound, CodeNotFound, "from")
	errBody(t, f.req("DELETE", "/admin/tool-aliases", f.admin, ""), http.StatusBadRequest, CodeBadRequest, "from")
	m = mustStatus(t, f.req("DELETE", "/admin/tool-aliases?from=old_search", f.admin, ""), http.StatusOK)
	if as := m["aliases"].([]any); len(as) != 0 {
		t.Fatalf("after delete: %v", m)
	}
	if n := len(f.audit("tool_alias.set")) + len(f.audit("tool_alias.deleted")); n != 2 {
		t.Fatalf("%d alias audit events", n)
	}
}

func TestCallRoutesUnconfigured(t *testing.T) {
	f := newFixture(t)
	for _, r := range []resp{f.get("/admin/concurrency"), f.get("/admin/cache"), f.get("/admin/tool-aliases"),
		f.req("DELETE", "/admin/cache", f.admin, "")} {
		errBody(t, r, http.StatusServiceUnavailable, CodeUnavailable, "")
	}
}
