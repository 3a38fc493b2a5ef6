package admin

import (
	"net/http"
	"testing"

	"github.com/paygate/paygate/internal/backend/resilience"
)

// fakeCircuits stands in for the gateway's breakers.
type fakeCircuits struct{ snaps []resilience.Snapshot }

func (f *fakeCircuits) Circuits() []resilience.Snapshot {
	return append([]resilience.Snapshot(nil), f.snaps...)
}

func (f *fakeCircuits) ResetCircuit(name string) []string {
	var out []string
	for i := range f.snaps {
		if name == "" || f.snaps[i].Backend == name {
			f.snaps[i].State, f.snaps[i].Failures = resilience.Closed, 0
			out = append(out, f.snaps[i].Backend)
		}
	}
	return out
}

func TestCircuitRoutes(t *testing.T) {
	fc := &fakeCircuits{snaps: []resilience.Snapshot{
		{Backend: "fs", State: resilience.Closed, Failures: 1, Threshold: 5, Rejections: 0},
		{Backend: "gh", State: resilience.Open, Failures: 5, Threshold: 5, Rejections: 7, RetryAfterMs: 1200},
	}}
	f := newFixture(t, func(o *Options) { o.Circuits = fc })

	m := mustStatus(t, f.req("GET", "/admin/circuit", f.viewer, ""), http.StatusOK)
	if m["state"] != "open" || m["failures"] != 6.0 || m["rejections"] != 7.0 {
		t.Fatalf("summary %v", m)
	}
	if cs := m["circuits"].([]any); len(cs) != 2 || cs[1].(map[string]any)["backend"] != "gh" || cs[1].(map[string]any)["retryAfterMs"] != 1200.0 {
		t.Fatalf("circuits %v", m["circuits"])
	}

	// Resetting needs the admin role.
	if r := f.req("POST", "/admin/circuit", f.viewer, `{}`); r.status != http.StatusForbidden {
		t.Fatalf("viewer reset: %d", r.status)
	}
	errBody(t, f.req("POST", "/admin/circuit", f.admin, `{"backend":"nope"}`), http.StatusNotFound, CodeNotFound, "backend")
	m = mustStatus(t, f.post("/admin/circuit", `{"backend":"gh"}`), http.StatusOK)
	if r := m["reset"].([]any); len(r) != 1 || r[0] != "gh" {
		t.Fatalf("reset %v", m)
	}
	if fc.snaps[1].State != resilience.Closed {
		t.Fatal("gh not reset")
	}
	m = mustStatus(t, f.post("/admin/circuit", ``), http.StatusOK)
	if r := m["reset"].([]any); len(r) != 2 {
		t.Fatalf("reset all %v", m)
	}
	if evs := f.audit("circuit.reset"); len(evs) != 2 {
		t.Fatalf("%d circuit.reset audit events, want 2", len(evs))
	}
}

// TestCircuitRoutesWithoutBreakers: breakers off (circuitBreakerThreshold
// 0) is an empty list, not an error.
func TestCircuitRoutesWithoutBreakers(t *testing.T) {
	f := newFixture(t)
	m := mustStatus(t, f.get("/admin/circuit"), http.StatusOK)
	if m["state"] != "closed" || len(m["circuits"].([]any)) != 0 {
		t.Fatalf("%v", m)
	}
	m = mustStatus(t, f.post("/admin/circuit", `{}`), http.StatusOK)
	if len(m["reset"].([]any)) != 0 {
		t.Fatalf("%v", m)
	}
}
