//go:build unix

// The restore's temporary file on Unix: locked for the one restore writing
// it, so that a second restore into the same output cannot truncate it.

package litestream

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openRestoreTemp opens tmpPath empty for this restore alone. The lock
// goes with the descriptor (and with a killed process), so a file a killed
// restore left is reused; one another restore holds is refused.
func openRestoreTemp(tmpPath string) (*os.File, error) {
	for {
		f, err := os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); errors.Is(err, unix.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("%s is locked: another restore into the same output is running", tmpPath)
		} else if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", tmpPath, err)
		}
		// The restore that held it may have renamed or removed it before
		// letting go: lock the file now at the path, not that one.
		if held, err := f.Stat(); err != nil {
			_ = f.Close()
			return nil, err
		} else if now, err := os.Stat(tmpPath); err != nil || !os.SameFile(held, now) {
			_ = f.Close()
			continue
		}
		if err := f.Truncate(0); err != nil {
			_ = f.Close()
			return nil, err
		}
		return f, nil
	}
}
