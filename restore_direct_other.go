//go:build !linux

package litestream

// openDirect returns nil: only Linux writes the restore file with O_DIRECT.
func openDirect(string) directWriter { return nil }
