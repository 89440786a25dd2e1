// follow_reseed_test.go: a follower whose replica was wiped and written
// again by another database must not apply that database's files.
package litestream_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// The replica of database A is wiped (the operator starts over, a bucket
// lifecycle rule, a new database pointed at the old path) and database B
// replicates to the same path from TXID 1 past A's last TXID. A follower
// of A must refuse B's files, whether it kept running (B's L0 file at its
// TXID is not the one it applied) or resumed from its sidecar (B's L0 file
// there does not hold the output's pages).
func TestReplica_Follow_RefusesReplacedReplica(t *testing.T) {
	for _, name := range []string{"Resumed", "Running"} {
		t.Run(name, func(t *testing.T) { testFollowRefusesReplacedReplica(t, name == "Running") })
	}
}

func testFollowRefusesReplacedReplica(t *testing.T, running bool) {
	ctx := context.Background()
	dbA, appA, clientA := MustOpenDB(t, 4096)
	for i := 0; i < 12; i++ {
		if _, err := appA.Exec(`INSERT INTO t (v, pad) WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value+1 FROM s WHERE value < 5) SELECT value, randomblob(2000) FROM s`); err != nil {
			t.Fatal(err)
		}
		if err := dbA.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := dbA.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	replicaPath := clientA.Path()
	var logs syncBuffer
	owner := litestream.NewDB(filepath.Join(t.TempDir(), "unused"))
	owner.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	follower := litestream.NewReplicaWithClient(owner, file.NewReplicaClient(replicaPath))
	out := filepath.Join(t.TempDir(), "follow.db")
	stop := startFollow(follower, out)
	waitFollowed(t, dbA, out)
	if !running {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	wantA := MustCheckRestored(t, out)
	txidA, err := litestream.ReadTXIDFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := dbA.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Start over: wipe the replica; database B replicates to it.
	if err := os.RemoveAll(replicaPath); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pathB := filepath.Join(dir, "b.db")
	appB := MustOpenApp(t, pathB, 4096)
	clientB := file.NewReplicaClient(replicaPath)
	dbB := MustNewDB(t, pathB, clientB)
	dbB.ShutdownSyncTimeout = 0
	dbB.MonitorInterval = 0
	dbB.Replica.MonitorEnabled = false
	clientB.Replica = dbB.Replica
	if err := dbB.Open(); err != nil {
		t.Fatal(err)
	}
	if _, err := appB.Exec(`CREATE TABLE u (v INTEGER); INSERT INTO t (v, pad) WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value+1 FROM s WHERE value < 8) SELECT value, randomblob(2000) FROM s`); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := appB.Exec(`INSERT INTO u (v) VALUES (?)`, 1000+i); err != nil {
			t.Fatal(err)
		}
		if err := dbB.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		pos, err := dbB.Pos()
		if err != nil {
			t.Fatal(err)
		}
		if pos.TXID >= txidA+3 {
			break
		}
	}
	if err := dbB.SyncAndWait(ctx); err != nil {
		t.Fatal(err)
	}
	posB, _ := dbB.Pos()
	t.Logf("A ended at %s, B at %s", txidA, posB.TXID)

	if !running {
		stop = startFollow(follower, out) // the follower of A resumes
	}
	waitFor(t, 10*time.Second, "the follower to refuse the replaced replica", func() bool {
		return strings.Contains(logs.String(), "replaced by another database")
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if txid, err := litestream.ReadTXIDFile(out); err != nil {
		t.Fatal(err)
	} else if txid != txidA {
		t.Fatalf("the follower of A moved from %s to %s on B's files", txidA, txid)
	}
	if got := MustCheckRestored(t, out); got != wantA {
		t.Fatalf("the output changed from A's %s to %s", wantA, got)
	}
}
