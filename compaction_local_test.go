// compaction_local_test.go checks the local copies compaction keeps of the
// files a higher level merges again.

package litestream_test

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// A compacted file's local copy is in place before its upload returns: from
// that moment the replica's listing names the file, and a higher level's
// compaction running beside this one may pick it and must find the copy
// rather than download the file.
func TestCompaction_LocalCopyInPlaceWhenUploadReturns(t *testing.T) {
	var db *litestream.DB
	var l1Writes int
	var missing []string
	failL1 := false
	wrap := func(c litestream.ReplicaClient) litestream.ReplicaClient {
		return &testClient{ReplicaClient: c, onWrite: func(level int, r io.Reader, write func(io.Reader) (*ltx.FileInfo, error)) (*ltx.FileInfo, error) {
			if level == 1 && failL1 {
				if _, err := io.Copy(io.Discard, r); err != nil {
					return nil, err
				}
				return nil, errors.New("injected: upload failed after the last byte")
			}
			info, err := write(r)
			if err == nil && level == 1 {
				l1Writes++
				if _, serr := os.Stat(db.LTXPath(1, info.MinTXID, info.MaxTXID)); serr != nil {
					missing = append(missing, serr.Error())
				}
			}
			return info, err
		}}
	}
	db, app, _ := MustOpenDBWrapped(t, 4096, wrap)
	litestream.SetTopCompactionLevel(db, 2) // L2 merges L1 again: L1 outputs are kept locally
	ctx := context.Background()
	commit := func(round int) {
		for i := 0; i < 3; i++ {
			if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, round*10+i); err != nil {
				t.Fatal(err)
			}
			if err := db.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Replica.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 3; round++ {
		commit(round)
		if _, err := db.Compact(ctx, 1); err != nil {
			t.Fatalf("round %d: compact L1: %v", round, err)
		}
	}
	if l1Writes != 3 {
		t.Fatalf("%d L1 uploads, want 3", l1Writes)
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d L1 uploads returned before their local copy was in place: %v", len(missing), l1Writes, missing)
	}

	// An upload that fails after the copy was put in place takes it away:
	// no local file claims to be a replica file that does not exist.
	failL1 = true
	commit(3)
	if _, err := db.Compact(ctx, 1); err == nil {
		t.Fatal("compaction succeeded with its upload failing")
	}
	entries, err := os.ReadDir(db.LTXLevelDir(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("local L1 holds %v after a failed upload, want the 3 uploaded files", names)
	}
}
