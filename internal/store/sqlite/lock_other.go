//go:build !unix

package sqlite

import "os"

// Without flock the single-writer rule is not enforced on this platform.
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}

func unlockFile(f *os.File) error { return f.Close() }
