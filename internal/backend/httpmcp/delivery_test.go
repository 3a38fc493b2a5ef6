package httpmcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/backend/httpmcp/h1"
)

// TestDeliveryClassification: only failures that prove the server never
// saw the request are marked not delivered; the rest may have run.
func TestDeliveryClassification(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/mcp", nil)
	_, refused := newClient().Do(req)

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", undelivered(refused), true},
		{"EOF after writing", undelivered(io.ErrUnexpectedEOF), false},
		{"503", statusFailure(&StatusError{Method: "POST", Code: 503}), true},
		{"429", statusFailure(&StatusError{Method: "POST", Code: 429}), true},
		{"502 may have run", statusFailure(&StatusError{Method: "POST", Code: 502}), false},
		{"504 may have run", statusFailure(&StatusError{Method: "POST", Code: 504}), false},
		{"500", statusFailure(&StatusError{Method: "POST", Code: 500}), false},
	}
	for _, tc := range tests {
		if got := errors.Is(tc.err, backend.ErrNotDelivered); got != tc.want {
			t.Errorf("%s: not delivered = %v, want %v (%v)", tc.name, got, tc.want, tc.err)
		}
	}
}

// TestLeanClientDeliveryClassification: the lean client's errors are
// classified like net/http's: a refused connection or a failed write was
// not delivered; a request written in full may have run.
func TestLeanClientDeliveryClassification(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := h1.New(h1.Config{URL: "http://" + addr + "/mcp"})
	if err != nil {
		t.Fatal(err)
	}
	_, refused := c.Post(context.Background(), &h1.Request{Body: []byte("{}")})
	if !errors.Is(undelivered(refused), backend.ErrNotDelivered) {
		t.Errorf("refused connection: %v, want not delivered", refused)
	}
	writeFailed := fmt.Errorf("%w: write: broken pipe", h1.ErrNotSent)
	if !errors.Is(undelivered(writeFailed), backend.ErrNotDelivered) {
		t.Errorf("failed write: want not delivered")
	}
	if errors.Is(undelivered(h1.ErrMalformed), backend.ErrNotDelivered) || errors.Is(undelivered(io.EOF), backend.ErrNotDelivered) {
		t.Errorf("a failure after the request was written must not be not-delivered")
	}
}
