package litestream

import "os"

// SetCrashPoint replaces the hook called at named steps of syncs and
// checkpoints, for crash tests in package litestream_test.
func SetCrashPoint(fn func(name string)) { crashPoint = fn }

// SetOpenFile replaces the function that opens local LTX files for staging,
// returning a func that restores it.
func SetOpenFile(fn func(name string, flag int, perm os.FileMode) (*os.File, error)) (restore func()) {
	prev := openFile
	openFile = fn
	return func() { openFile = prev }
}
