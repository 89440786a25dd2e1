//go:build !windows

package litestream

import (
	"io"
	"os"
	"syscall"
)

// lockDatabase takes the locks an exclusive SQLite writer holds, waiting
// for readers in other processes to finish.
func lockDatabase(f *os.File) error {
	if err := fcntlLock(f, syscall.F_WRLCK, sqlitePendingByte, 1); err != nil {
		return err
	}
	return fcntlLock(f, syscall.F_WRLCK, sqliteSharedFirst, sqliteSharedSize)
}

func unlockDatabase(f *os.File) error {
	if err := fcntlLock(f, syscall.F_UNLCK, sqliteSharedFirst, sqliteSharedSize); err != nil {
		return err
	}
	return fcntlLock(f, syscall.F_UNLCK, sqlitePendingByte, 1)
}

func fcntlLock(f *os.File, typ int16, start, length int64) error {
	lk := syscall.Flock_t{Type: typ, Whence: io.SeekStart, Start: start, Len: length}
	return syscall.FcntlFlock(f.Fd(), syscall.F_SETLKW, &lk)
}
