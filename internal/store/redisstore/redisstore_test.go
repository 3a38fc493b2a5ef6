package redisstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/storetest"
	"github.com/paygate/paygate/internal/testenv"
)

var prefixes atomic.Int64

// freshPrefix gives each subtest its own key space on the shared server:
// an empty store.
func freshPrefix() string { return fmt.Sprintf("t%d", prefixes.Add(1)) }

func openT(t testing.TB, addr, prefix string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{URL: "redis://" + addr + "/0", Prefix: prefix})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// newStores starts a real redis-server for a test and returns a
// constructor of fresh stores on it.
func newStores(t *testing.T) func(t *testing.T) store.Store {
	addr, _ := testenv.RedisServer(t)
	return func(t *testing.T) store.Store {
		s := openT(t, addr, freshPrefix())
		t.Cleanup(func() { s.Close() })
		return s
	}
}

func TestContract(t *testing.T) { storetest.Run(t, newStores(t)) }

func TestConcurrent(t *testing.T) { storetest.RunConcurrent(t, newStores(t)) }

// TestShared runs the two-instance suite with two independent handles
// (connections, key caches, subscriptions) on one Redis.
func TestShared(t *testing.T) {
	addr, _ := testenv.RedisServer(t)
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		p := freshPrefix()
		a, b := openT(t, addr, p), openT(t, addr, p)
		t.Cleanup(func() { a.Close(); b.Close() })
		return a, b
	})
}

func TestReopen(t *testing.T) {
	addr, _ := testenv.RedisServer(t)
	storetest.RunReopen(t, func(t *testing.T) func(t *testing.T) store.Store {
		p := freshPrefix()
		return func(t *testing.T) store.Store { return openT(t, addr, p) }
	})
}
