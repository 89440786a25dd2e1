//go:build !windows

// File owners on Unix, for giving new files the owner of the database.

package internal

import (
	"os"
	"syscall"
)

// fileOwner returns the uid and gid of fi, or -1 when unknown.
func fileOwner(fi os.FileInfo) (uid, gid int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return -1, -1
}
