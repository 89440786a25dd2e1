//go:build linux

// O_DIRECT writes of the restore file on Linux.

package litestream

import (
	"os"
	"syscall"
)

// openDirect opens path for writes that bypass the page cache, or returns
// nil where the file system does not allow it.
func openDirect(path string) directWriter {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}
