//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// InUse reports whether a process holds the database at path (its
// "<path>.lock"), and that process's pid when it recorded one. It takes
// the lock for an instant and releases it, so a gateway starting at the
// same moment may still win the race; Open stays the authority.
func InUse(path string) (pid int, inUse bool, err error) {
	f, err := os.OpenFile(path+".lock", os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("sqlite: check lock of %s: %w", path, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return 0, false, fmt.Errorf("sqlite: check lock of %s: %w", path, err)
		}
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b[:n])))
		return pid, true, nil
	}
	return 0, false, nil // closing f releases the lock
}
