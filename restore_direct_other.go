//go:build !linux

package litestream

import "os"

// openDirect returns nil: only Linux writes the restore file with O_DIRECT.
func openDirect(string) *os.File { return nil }
