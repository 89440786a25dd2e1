//go:build !linux

// No O_DIRECT outside Linux: the restore file goes through the page cache.

package litestream

// openDirect returns nil: only Linux writes the restore file with O_DIRECT.
func openDirect(string) directWriter { return nil }
