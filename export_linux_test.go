// Test hooks into the package's internals, Linux only.
package litestream

import "testing"

// BreakWALWatcher makes the WAL watchers of monitors started until the test
// ends fail right after they start, as if inotify stopped working.
func BreakWALWatcher(t testing.TB) {
	prev := openWALWatcher
	openWALWatcher = func(path string) (*walWatcher, error) {
		w, err := newWALWatcher(path)
		if err == nil {
			_ = w.Close() // C closes, as when inotify fails
		}
		return w, err
	}
	t.Cleanup(func() { openWALWatcher = prev })
}
