//go:build !unix

package sqlite

// InUse cannot tell on this platform; Open's own check stays the
// authority.
func InUse(path string) (pid int, inUse bool, err error) { return 0, false, nil }
