package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/storetest"
)

func openT(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// newFileStore opens a store on a file in t.TempDir() so WAL and fsync run.
func newFileStore(sync string) func(t *testing.T) store.Store {
	return func(t *testing.T) store.Store {
		s := openT(t, Options{Path: filepath.Join(t.TempDir(), "paygate.db"), Sync: sync})
		t.Cleanup(func() {
			if err := s.Verify(context.Background()); err != nil {
				t.Errorf("Verify: %v", err)
			}
			s.Close()
		})
		return s
	}
}

func newMemStore(t *testing.T) store.Store {
	s := openT(t, Options{InMemory: true})
	t.Cleanup(func() {
		if err := s.Verify(context.Background()); err != nil {
			t.Errorf("Verify: %v", err)
		}
		s.Close()
	})
	return s
}

func TestContract(t *testing.T) {
	t.Run("File", func(t *testing.T) { storetest.Run(t, newFileStore(SyncFull)) })
	t.Run("Memory", func(t *testing.T) { storetest.Run(t, newMemStore) })
}

func TestConcurrent(t *testing.T) {
	t.Run("File", func(t *testing.T) { storetest.RunConcurrent(t, newFileStore(SyncFull)) })
	t.Run("FileNormal", func(t *testing.T) { storetest.RunConcurrent(t, newFileStore(SyncNormal)) })
	t.Run("Memory", func(t *testing.T) { storetest.RunConcurrent(t, newMemStore) })
}

func TestReopen(t *testing.T) {
	storetest.RunReopen(t, func(t *testing.T) func(t *testing.T) store.Store {
		path := filepath.Join(t.TempDir(), "paygate.db")
		return func(t *testing.T) store.Store {
			s := openT(t, Options{Path: path})
			if err := s.Verify(context.Background()); err != nil {
				t.Fatalf("Verify after open: %v", err)
			}
			return s
		}
	})
}

// TestShared runs the two-instance suite with both handles being one
// store. SQLite has a single writer process (the flock), so this checks the
// suite itself and that one handle behaves as the suite requires; Redis
// runs it with two real clients.
func TestShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		s := newFileStore(SyncNormal)(t)
		return s, s
	})
}
