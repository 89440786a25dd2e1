// Tests of temporary upload names and the sweep schedule.
package internal_test

import (
	"path"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream/internal"
)

func TestIsLTXTempName(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"0000000000000001-0000000000000002.ltx.123456.tmp", true},                 // file backend
		{"0000000000000001-0000000000000002.ltx.42.1700000000000.7.tmp", true},     // sftp, webdav
		{"0000000000000001-0000000000000002.ltx", false},                           // a replica file
		{"0000000000000001-0000000000000002.ltx..tmp", false},                      // no token
		{"notes.ltx.1.tmp", false},                                                 // not an LTX name
		{"0000000000000001-0000000000000002.ltx.1.tmp.bak", false},                 // not a temporary
		{"x0000000000000001-0000000000000002.ltx.1.tmp", false},                    // prefix
		{"0000000000000001-0000000000000002.ltx.1.tmp" + "/", false},               // not a file name
		{"0000000000000001-0000000000000002.ltx.0000000000000001.ltx.1.tmp", true}, // odd but ours
	} {
		if got := internal.IsLTXTempName(tt.name); got != tt.want {
			t.Errorf("IsLTXTempName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestLTXTempName_RecognizedAndUnique(t *testing.T) {
	const final = "ltx/0/0000000000000001-0000000000000002.ltx"
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		name := internal.LTXTempName(final)
		if !strings.HasPrefix(name, final+".") || !internal.IsLTXTempName(path.Base(name)) {
			t.Fatalf("LTXTempName(%q) = %q: not a temporary name of that file", final, name)
		} else if seen[name] {
			t.Fatalf("LTXTempName(%q) returned %q twice", final, name)
		}
		seen[name] = true
	}
}

func TestTempSweeper_Due(t *testing.T) {
	var s internal.TempSweeper
	now := time.Now()
	if !s.Due("a", now) {
		t.Fatal("first sweep of a not due")
	} else if s.Due("a", now.Add(time.Minute)) {
		t.Fatal("a due again after a minute")
	} else if !s.Due("b", now) {
		t.Fatal("first sweep of b not due")
	} else if !s.Due("a", now.Add(internal.StaleTempAge)) {
		t.Fatalf("a not due after %s", internal.StaleTempAge)
	}
}
