// Tests of the lease record's name under a replica path.

package objlease_test

import (
	"testing"

	"github.com/benbjohnson/litestream/internal/objlease"
)

// Every spelling of a path that names the same LTX files names the same
// lease record (the abs and gs leasers build it with Key).
func TestKey_SpellingsOfOnePath(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"", "lock.json"},
		{"db", "db/lock.json"},
		{"db/", "db/lock.json"},
		{"a//db/", "a/db/lock.json"},
	} {
		if got := objlease.Key(tc.path, "lock.json"); got != tc.want {
			t.Errorf("Key(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}
