package admin

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/paygate/paygate/internal/audit"
	"github.com/paygate/paygate/internal/store"
)

// defaultKeepAlive is how often an idle event stream gets a comment line,
// so proxies and load balancers do not close it.
const defaultKeepAlive = 15 * time.Second

func (a *API) eventRoutes() []Route {
	return []Route{
		{Method: "GET", Pattern: "/admin/events", Role: store.RoleViewer, Handler: a.eventStream, Doc: Doc{
			Tag: "audit", Summary: "Stream audit events live (Server-Sent Events)",
			Description: "Every audit event recorded after the stream opens is sent as an \"audit\" event whose data is " +
				"one event as GET /audit shows it (live events carry id 0: their store id is assigned when they are " +
				"written; GET /audit has them once durable). The stream opens with a \"connected\" event, sends a " +
				"comment every 15 seconds, and ends with a \"close\" event when the server shuts down or when the " +
				"client reads too slowly to keep up (it is dropped rather than slowing the gateway).",
			Query:    []Param{{Name: "types", Type: "string", Description: "comma-separated event types to receive; all when absent"}},
			Response: auditEvent{}, Also: []string{"text/event-stream"},
		}},
	}
}

type streamConnected struct {
	Message string `json:"message"`
	Filters any    `json:"filters"` // "all" or the list of types
}

type streamClosed struct {
	Reason string `json:"reason"`
}

func (a *API) eventStream(w http.ResponseWriter, r *http.Request) error {
	types, err := auditTypes(queryOf(r))
	if err != nil {
		return err
	}
	if a.trail == nil {
		return newError(CodeUnavailable, "", "the live audit stream is not available on this server")
	}
	sub, err := a.trail.Subscribe(types)
	switch {
	case errors.Is(err, audit.ErrTooMany):
		return newError(CodeUnavailable, "", "too many open event streams; close one and retry")
	case errors.Is(err, audit.ErrClosed):
		return newError(CodeUnavailable, "", "the server is shutting down")
	case err != nil:
		return err
	}
	defer sub.Close()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	var filters any = "all"
	if len(types) > 0 {
		filters = types
	}
	if err := writeSSE(w, rc, "connected", streamConnected{Message: "Admin event stream connected", Filters: filters}); err != nil {
		return nil // the client left
	}

	every := a.keepalive
	if every <= 0 {
		every = defaultKeepAlive
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case ev := <-sub.Events():
			if writeSSE(w, rc, "audit", auditEventOf(&ev)) != nil {
				return nil
			}
		case <-tick.C:
			if _, err := fmt.Fprintf(w, ": keepalive %s\n\n", a.now().UTC().Format(time.RFC3339)); err != nil || rc.Flush() != nil {
				return nil
			}
		case <-sub.Done():
			reason := "closed"
			switch err := sub.Err(); {
			case errors.Is(err, audit.ErrSlowSubscriber):
				reason = "dropped: the client did not keep up with the events; reconnect and use GET /audit for what was missed"
			case errors.Is(err, audit.ErrClosed):
				reason = "the server is shutting down"
				for drained := false; !drained; { // what was queued before the close still goes out
					select {
					case ev := <-sub.Events():
						if writeSSE(w, rc, "audit", auditEventOf(&ev)) != nil {
							return nil
						}
					default:
						drained = true
					}
				}
			}
			_ = writeSSE(w, rc, "close", streamClosed{Reason: reason})
			return nil
		}
	}
}

// writeSSE writes one event (JSON data on one line) and flushes it.
func writeSSE(w http.ResponseWriter, rc *http.ResponseController, event string, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
		return err
	}
	return rc.Flush()
}
