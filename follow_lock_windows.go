package litestream

import (
	"os"

	"golang.org/x/sys/windows"
)

// lockDatabase takes the locks an exclusive SQLite writer holds, waiting
// for readers in other processes to finish.
func lockDatabase(f *os.File) error {
	if err := lockRange(f, sqlitePendingByte, 1); err != nil {
		return err
	}
	return lockRange(f, sqliteSharedFirst, sqliteSharedSize)
}

func unlockDatabase(f *os.File) error {
	if err := unlockRange(f, sqliteSharedFirst, sqliteSharedSize); err != nil {
		return err
	}
	return unlockRange(f, sqlitePendingByte, 1)
}

func lockRange(f *os.File, start, length uint32) error {
	ol := windows.Overlapped{Offset: start}
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK, 0, length, 0, &ol)
}

func unlockRange(f *os.File, start, length uint32) error {
	ol := windows.Overlapped{Offset: start}
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, length, 0, &ol)
}
