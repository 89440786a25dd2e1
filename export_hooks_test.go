package litestream

import (
	"os"
	"testing"
)

// SetOpenFileHook replaces the opener of staged LTX files until the test
// ends, so external tests can pause or fail a sync at that point.
func SetOpenFileHook(t testing.TB, fn func(name string, flag int, perm os.FileMode) (*os.File, error)) {
	prev := openFile
	openFile = fn
	t.Cleanup(func() { openFile = prev })
}
