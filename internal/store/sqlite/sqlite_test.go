package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

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

// TestStaleMemoryDirsRemoved: an --in-memory store's directory left by a
// killed process (unlocked, over a minute old) is removed by the next
// in-memory Open; a live store's directory and a fresh one are kept.
func TestStaleMemoryDirsRemoved(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	live := openT(t, Options{InMemory: true})
	defer live.Close()
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(live.tmpDir, old, old); err != nil {
		t.Fatal(err)
	}
	mk := func(age time.Duration) string {
		dir, err := os.MkdirTemp("", memoryDirPrefix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "state.db"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "state.db.lock"), []byte("999999"), 0o600); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(dir, at, at); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	stale, fresh := mk(time.Hour), mk(0)
	s := openT(t, Options{InMemory: true})
	defer s.Close()
	for dir, want := range map[string]bool{stale: false, fresh: true, live.tmpDir: true, s.tmpDir: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", dir, err == nil, want)
		}
	}
}
