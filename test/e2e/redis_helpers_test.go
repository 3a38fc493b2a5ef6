package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/keys"
	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/redisstore"
	"github.com/paygate/paygate/internal/testenv"
)

// redisFleet is n paygate processes sharing one real redis-server, each
// wrapping the same echo backend over HTTP.
type redisFleet struct {
	t     *testing.T
	redis *testenv.Redis
	gws   []*gateway
}

func startRedisFleet(t *testing.T, n int, extra ...string) *redisFleet {
	t.Helper()
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	echo := startRedisEcho(t)
	f := &redisFleet{t: t, redis: r}
	for range n {
		args := append([]string{"--redis-url", "redis://" + r.Addr, "--remote-url", echo, "--rate-limit", "0"}, extra...)
		f.gws = append(f.gws, startGateway(t, args...))
	}
	return f
}

// startRedisEcho runs bench/echo over Streamable HTTP and returns its /mcp
// URL.
func startRedisEcho(t *testing.T) string {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	cmd := exec.Command(testenv.BuildGo(t, "github.com/paygate/paygate/bench/echo"), "--http", addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "http://" + addr + "/mcp"
		}
		if time.Now().After(deadline) {
			t.Fatalf("echo server on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// store opens a store handle on the fleet's Redis, for looking at the
// ledger the gateways wrote.
func (f *redisFleet) store() *redisstore.Store {
	f.t.Helper()
	st, err := redisstore.Open(context.Background(), redisstore.Options{URL: "redis://" + f.redis.Addr})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { st.Close() })
	return st
}

// keyID resolves an API key's secret to its id through the store.
func redisKeyID(t *testing.T, st store.Store, secret string) string {
	t.Helper()
	k, err := st.LookupHash(context.Background(), keys.Hash(secret))
	if err != nil {
		t.Fatalf("key %s: %v", keys.Mask(secret), err)
	}
	return k.ID
}

// echoOutcome is what a tools/call got: a result, or a denial's reason.
type echoOutcome struct {
	ok     bool
	reason string // error.data.reason, or "rpc <code>"
}

var redisHTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// callEcho sends one tools/call of the echo tool (JSON answer, no session)
// and classifies the answer. It never calls t.Fatal: it runs on many
// goroutines.
func callEcho(base, key string, id int) (echoOutcome, error) {
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call",
		"params": map[string]any{"name": "echo", "arguments": map[string]any{"n": id}}})
	req, _ := http.NewRequest("POST", base+"/mcp", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-API-Key", key)
	resp, err := redisHTTP.Do(req)
	if err != nil {
		return echoOutcome{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r rpcResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return echoOutcome{}, fmt.Errorf("decode %d %q: %w", resp.StatusCode, raw, err)
	}
	if r.Error == nil {
		if len(r.Result) == 0 {
			return echoOutcome{}, fmt.Errorf("answer without result or error: %s", raw)
		}
		return echoOutcome{ok: true}, nil
	}
	if reason := r.reason(); reason != "" {
		return echoOutcome{reason: reason}, nil
	}
	return echoOutcome{reason: "rpc " + strconv.FormatInt(r.Error.Code, 10)}, nil
}

// ledgerTotals sums a key's ledger by kind and checks each call id was
// charged at most once and refunded at most once.
func ledgerTotals(t *testing.T, st store.Store, keyID string) (charges, refunds int64) {
	t.Helper()
	es, err := st.Entries(context.Background(), store.LedgerFilter{KeyID: keyID})
	if err != nil {
		t.Fatal(err)
	}
	charged := map[string]int{}
	refunded := map[string]int{}
	for _, e := range es {
		switch e.Kind {
		case store.EntryCharge:
			charges -= e.Delta
			if charged[e.CallID]++; charged[e.CallID] > 1 {
				t.Fatalf("call %s charged twice", e.CallID)
			}
		case store.EntryRefund:
			refunds += e.Delta
			if refunded[e.CallID]++; refunded[e.CallID] > 1 || charged[e.CallID] == 0 {
				t.Fatalf("call %s refunded twice or without a charge", e.CallID)
			}
		}
	}
	return charges, refunds
}
