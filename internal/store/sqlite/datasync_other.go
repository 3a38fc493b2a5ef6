//go:build !linux

package sqlite

import "os"

// fdatasync falls back to File.Sync (F_FULLFSYNC on macOS) where
// fdatasync is not available.
func fdatasync(f *os.File) error { return f.Sync() }
