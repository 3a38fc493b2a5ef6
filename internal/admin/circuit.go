package admin

import (
	"net/http"

	"github.com/paygate/paygate/internal/backend/resilience"
	"github.com/paygate/paygate/internal/store"
)

// Circuits is the backends' circuit breakers as /admin/circuit uses them.
// resilience.Breakers implements it.
type Circuits interface {
	Circuits() []resilience.Snapshot
	// ResetCircuit closes the named backend's breaker, or all when name is
	// "", and returns the names reset.
	ResetCircuit(name string) []string
}

func (a *API) circuitRoutes() []Route {
	return []Route{
		{Method: "GET", Pattern: "/admin/circuit", Role: store.RoleViewer, Handler: a.circuitStatus, Doc: Doc{
			Tag: "backends", Summary: "Circuit breaker state of every backend",
			Description: "state is closed, open or half_open (the cooldown has passed; the next call is the trial). " +
				"The top-level state, failures and rejections summarize all backends (the worst state, sums); " +
				"circuits lists each backend. While a breaker is open, calls to its backend fail at once with " +
				"-32003 and are not charged. An empty list means circuit breakers are off (circuitBreakerThreshold 0).",
			Response: circuitResponse{Circuits: []resilience.Snapshot{}},
		}},
		{Method: "POST", Pattern: "/admin/circuit", Role: store.RoleAdmin, Handler: a.circuitReset, Doc: Doc{
			Tag: "backends", Summary: "Reset circuit breakers to closed",
			Description: "Closes the breaker of the backend named by backend (its prefix in multi-server mode), " +
				"or of every backend when backend is absent.",
			Request: circuitResetRequest{}, Response: circuitResetResponse{Reset: []string{}, Circuits: []resilience.Snapshot{}},
		}},
	}
}

type circuitResponse struct {
	State      resilience.State      `json:"state"`
	Failures   int                   `json:"failures"`
	Rejections int64                 `json:"rejections"`
	Circuits   []resilience.Snapshot `json:"circuits"`
}

type circuitResetRequest struct {
	Backend string `json:"backend,omitempty"`
}

type circuitResetResponse struct {
	Reset    []string              `json:"reset"`
	Circuits []resilience.Snapshot `json:"circuits"`
}

func (a *API) circuits() []resilience.Snapshot {
	if a.breakers == nil {
		return []resilience.Snapshot{}
	}
	return a.breakers.Circuits()
}

func (a *API) circuitStatus(w http.ResponseWriter, r *http.Request) error {
	out := circuitResponse{State: resilience.Closed, Circuits: a.circuits()}
	rank := map[resilience.State]int{resilience.Closed: 0, resilience.HalfOpen: 1, resilience.Open: 2}
	for _, c := range out.Circuits {
		if rank[c.State] > rank[out.State] {
			out.State = c.State
		}
		out.Failures += c.Failures
		out.Rejections += c.Rejections
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) circuitReset(w http.ResponseWriter, r *http.Request) error {
	var req circuitResetRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	var reset []string
	if a.breakers != nil {
		reset = a.breakers.ResetCircuit(req.Backend)
	}
	if req.Backend != "" && len(reset) == 0 {
		return notFound("backend", "backend "+req.Backend)
	}
	if reset == nil {
		reset = []string{}
	}
	a.audit(r, "circuit.reset", nil, "circuit breakers reset to closed", map[string]any{"backends": reset})
	writeJSON(w, http.StatusOK, circuitResetResponse{Reset: reset, Circuits: a.circuits()})
	return nil
}
