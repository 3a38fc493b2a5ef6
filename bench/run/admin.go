package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// bulkMax is the most operations POST /keys/bulk takes in one request.
const bulkMax = 100

// adminClient creates API keys through paygate's admin API.
type adminClient struct {
	base   string // e.g. http://127.0.0.1:8080 plus the admin prefix
	key    string // sent as X-Admin-Key
	client *http.Client
}

// errNoBulk reports that the gateway has no POST /keys/bulk.
var errNoBulk = errors.New("no bulk key endpoint")

func (a *adminClient) post(ctx context.Context, path string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Admin-Key", a.key)
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// createKey creates one key with POST /keys and returns its secret.
func (a *adminClient) createKey(ctx context.Context, name string, credits int64) (string, error) {
	status, body, err := a.post(ctx, "/keys", map[string]any{"name": name, "credits": credits})
	if err != nil {
		return "", fmt.Errorf("POST %s/keys: %w", a.base, err)
	}
	if status != http.StatusOK && status != http.StatusCreated {
		return "", fmt.Errorf("POST %s/keys: HTTP %d: %s", a.base, status, short(body))
	}
	var r struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Key == "" {
		return "", fmt.Errorf("POST %s/keys: no \"key\" in the reply: %s", a.base, short(body))
	}
	return r.Key, nil
}

// createBulk creates one key per name with POST /keys/bulk. It returns
// errNoBulk when the endpoint does not exist.
func (a *adminClient) createBulk(ctx context.Context, names []string, credits int64) (int, error) {
	type op struct {
		Action  string `json:"action"`
		Name    string `json:"name"`
		Credits int64  `json:"credits"`
	}
	ops := make([]op, len(names))
	for i, n := range names {
		ops[i] = op{Action: "create", Name: n, Credits: credits}
	}
	status, body, err := a.post(ctx, "/keys/bulk", map[string]any{"operations": ops})
	if err != nil {
		return 0, fmt.Errorf("POST %s/keys/bulk: %w", a.base, err)
	}
	switch status {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return 0, errNoBulk
	default:
		return 0, fmt.Errorf("POST %s/keys/bulk: HTTP %d: %s", a.base, status, short(body))
	}
	var r struct {
		Results []struct {
			Result *struct {
				Key string `json:"key"`
			} `json:"result"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("POST %s/keys/bulk: decode reply: %w: %s", a.base, err, short(body))
	}
	created := 0
	for _, res := range r.Results {
		if res.Result != nil && res.Result.Key != "" {
			created++
		}
	}
	if created != len(names) {
		return created, fmt.Errorf("POST %s/keys/bulk: %d of %d keys created: %s", a.base, created, len(names), short(body))
	}
	return created, nil
}

// keyFill is how a store was filled with keys.
type keyFill struct {
	Count   int     `json:"count"`
	Method  string  `json:"method"` // "bulk" (POST /keys/bulk) or "single" (POST /keys)
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"per_sec"`
}

// createMany creates n keys named bench-0 … bench-(n-1), through the bulk
// endpoint when the first bulk request succeeds and one by one otherwise,
// with concurrent requests, writing a progress line to progress.
func (a *adminClient) createMany(ctx context.Context, n int, credits int64, progress io.Writer) (keyFill, error) {
	start := time.Now()
	var done atomic.Int64
	method := "bulk"
	name := func(i int) string { return "bench-" + strconv.Itoa(i) }
	first := min(n, bulkMax)
	names := make([]string, first)
	for i := range names {
		names[i] = name(i)
	}
	next := 0
	if _, err := a.createBulk(ctx, names, credits); err == nil {
		done.Add(int64(first))
		next = first
	} else if errors.Is(err, errNoBulk) {
		method = "single"
	} else {
		return keyFill{}, err
	}
	stopProgress := showProgress(progress, n, &done, start, method)
	defer stopProgress()

	// Hand out work in chunks: bulk requests of up to bulkMax keys, or
	// single keys.
	chunk, workers := bulkMax, 4
	if method == "single" {
		chunk, workers = 1, 32
	}
	type job struct{ from, to int }
	jobs := make(chan job)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var firstErr error
	var once sync.Once
	fail := func(err error) { once.Do(func() { firstErr = err; cancel() }) }
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				if method == "single" {
					if _, err := a.createKey(ctx, name(j.from), credits); err != nil {
						fail(err)
						continue
					}
					done.Add(1)
					continue
				}
				names := make([]string, 0, j.to-j.from)
				for i := j.from; i < j.to; i++ {
					names = append(names, name(i))
				}
				created, err := a.createBulk(ctx, names, credits)
				done.Add(int64(created))
				if err != nil {
					fail(err)
				}
			}
		})
	}
feed:
	for i := next; i < n; i += chunk {
		select {
		case jobs <- job{i, min(i+chunk, n)}:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	fill := keyFill{Count: int(done.Load()), Method: method, Seconds: time.Since(start).Seconds()}
	if fill.Seconds > 0 {
		fill.PerSec = float64(fill.Count) / fill.Seconds
	}
	if firstErr != nil {
		return fill, fmt.Errorf("create %d keys (%s): %d created, then: %w", n, method, fill.Count, firstErr)
	}
	return fill, nil
}

// showProgress rewrites one status line every half second until the
// returned function is called.
func showProgress(w io.Writer, total int, done *atomic.Int64, start time.Time, method string) func() {
	stop := make(chan struct{})
	finished := make(chan struct{})
	line := func() {
		d := done.Load()
		rate := float64(d) / max(time.Since(start).Seconds(), 1e-9)
		fmt.Fprintf(w, "\r  creating keys: %d/%d (%s, %.0f/s)   ", d, total, method, rate)
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				line()
				fmt.Fprintln(w)
				return
			case <-t.C:
				line()
			}
		}
	}()
	return func() { close(stop); <-finished }
}

func short(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
