// Follow mode against a damaged replica: failures found by the damage
// steps of TestReplica_FollowInterleavings (a replica wiped or put back
// from an older copy, its primary re-seeding it from an earlier TXID),
// reduced to deterministic tests. Each says what the README promises and
// what the library did before the fix.
package litestream_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// openReseedingPrimary opens a primary that lists its replica on every
// upload (so it notices a wipe at once) and whose local L0 copies go to
// retention at each compaction (so it re-seeds a wiped replica from TXID 1
// instead of uploading the lost files again), and commits n rows.
func openReseedingPrimary(t *testing.T, n int) (*litestream.DB, *sql.DB, *file.ReplicaClient) {
	t.Helper()
	path, app, client := mustAppWithReplica(t)
	db := manual(MustNewDB(t, path, client))
	db.Replica.IndexRefreshInterval = -1
	db.L0Retention = time.Nanosecond
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 1, n)
	return db, app, client
}

// wipeAndReseed prunes the primary's local L0 files, removes the replica
// directory and commits rows of their own pages until the primary, which
// re-seeds the replica from TXID 1, reaches TXID until.
func wipeAndReseed(t *testing.T, db *litestream.DB, app *sql.DB, client *file.ReplicaClient, until ltx.TXID) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Compact(ctx, 1); err != nil && !errors.Is(err, litestream.ErrNoCompaction) {
		t.Fatal(err)
	}
	if err := os.RemoveAll(client.Path()); err != nil {
		t.Fatal(err)
	}
	for v := 100; ; v++ {
		if _, err := app.Exec(`INSERT INTO t (v, pad) VALUES (?, randomblob(10000))`, v); err != nil {
			t.Fatal(err)
		} else if err := db.SyncAndWait(ctx); err != nil {
			t.Fatal(err)
		}
		pos, err := db.Pos()
		if err != nil {
			t.Fatal(err)
		}
		if pos.TXID == until {
			return
		} else if pos.TXID > until {
			t.Fatalf("precondition: the primary went from TXID %s to %s, past %s", pos.TXID-1, pos.TXID, until)
		}
	}
}

// saveReplicaCopy copies the replica's directory aside and returns the
// copy's path, for putBackReplicaCopy.
func saveReplicaCopy(t *testing.T, client *file.ReplicaClient) string {
	t.Helper()
	old := filepath.Join(t.TempDir(), "old")
	if err := copyTree(client.Path(), old); err != nil {
		t.Fatal(err)
	}
	return old
}

// putBackReplicaCopy replaces the replica's directory with the copy at old,
// as an operator restoring an older backup of the bucket would.
func putBackReplicaCopy(t *testing.T, client *file.ReplicaClient, old string) {
	t.Helper()
	if err := os.RemoveAll(client.Path()); err != nil {
		t.Fatal(err)
	} else if err := os.Rename(old, client.Path()); err != nil {
		t.Fatal(err)
	}
}

// putBackPreReseedCopy copies the replica, wipes and re-seeds it up to
// TXID at, then, with the primary listing its replica only hourly, puts
// the copy back and commits one row, which the primary uploads on top of
// the copy's file at its own TXID, unaware. The next upload lists again.
func putBackPreReseedCopy(t *testing.T, db *litestream.DB, app *sql.DB, client *file.ReplicaClient, at ltx.TXID) {
	t.Helper()
	old := saveReplicaCopy(t, client)
	wipeAndReseed(t, db, app, client, at)
	db.Replica.IndexRefreshInterval = time.Hour // the copy put back goes unnoticed at first
	putBackReplicaCopy(t, client, old)
	mustInsertReplicated(t, db, app, 200, 1)
	db.Replica.IndexRefreshInterval = -1
}

// Found by TestReplica_FollowInterleavings with damage (seeds 1, 2, 3, 6 of
// 20 before the hunt pushed its primary one TXID further): a replica
// re-seeded from TXID 1 whose new numbering reaches the output's TXID T
// exactly holds another state at T. The README: such a replica "is refused
// once its TXIDs reach the output's (before that there is nothing to
// apply: the follower waits, and logs once ...)". The follower logs that
// it waits, then, when the replica reaches T, logs "follow: the replica
// reaches the output's TXID again" and goes on polling: -txid says T, the
// replica's newest TXID, while the output holds the old numbering's state
// at T, and nothing says so until the primary writes T+1. A reader or tool
// comparing -txid with the replica's position takes the output for current.
func TestReplica_Follow_RefusesRenumberedAtOutputTXID(t *testing.T) {
	db, app, client := openReseedingPrimary(t, 4)
	out := filepath.Join(t.TempDir(), "follow.db")
	var logs syncBuffer
	follower := loggedFollower(t, client, &logs)
	stop, ended := startFollowEnding(follower, out)
	defer func() { _ = stop() }()
	waitFollowed(t, db, out)
	at, err := litestream.ReadTXIDFile(out)
	if err != nil {
		t.Fatal(err)
	}
	old := MustCheckRestored(t, out)

	wipeAndReseed(t, db, app, client, at)
	if got := MustDump(t, app); got == old {
		t.Fatalf("precondition: the primary's state at TXID %s is the output's", at)
	}
	// Give the follower many polls (20 ms each) to look at the replica's
	// file at its TXID: it must end with the refusal.
	deadline := time.After(10 * time.Second)
	var seen <-chan time.Time
	for done := false; !done; {
		select {
		case err := <-ended:
			if !isRefusal(err) {
				t.Fatalf("follow ended with %v, want the refusal of a replica numbered again", err)
			}
			return
		case <-deadline:
			done = true
		case <-seen:
			done = true
		case <-time.After(20 * time.Millisecond):
			if seen == nil && strings.Contains(logs.String(), "reaches the output's TXID again") {
				seen = time.After(time.Second)
			}
		}
	}
	txid, _ := litestream.ReadTXIDFile(out)
	t.Fatalf("the replica, numbered again from TXID 1, reached the output's TXID %s with another state (%s, the output %s); the follower, at -txid %s, did not refuse it and logged:\n%s",
		at, MustDump(t, app), MustCheckRestored(t, out), txid, logs.String())
}

// Found by TestReplica_FollowInterleavings with damage (seed 8): a
// follower killed while applying TXID T+1 leaves the output at T with
// -txid.next T+1. The replica is then wiped and re-seeded from TXID 1 past
// T+1. The next follower of the output takes the re-seeded replica's L0
// file at T for the one that brought the output there (only its WAL range
// is compared, since the output may hold T+1), and the next file then
// fails its chain check: "follow failed ... ltx file corrupted: grows the
// database ... a file of another database", logged once and retried every
// interval for ever. The README promises that follow mode ends with an
// error matching ErrLTXCorrupted saying the replica was numbered again
// (as TestReplica_Follow_RefusesReseededReplica checks for a follower
// without -txid.next).
func TestReplica_Follow_ResumeAfterKillRefusesReseededReplica(t *testing.T) {
	db, app, client := openReseedingPrimary(t, 4)
	out := filepath.Join(t.TempDir(), "follow.db")
	follower := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(client.Path()))
	stop := startFollow(follower, out)
	waitFollowed(t, db, out)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	at, err := litestream.ReadTXIDFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := MustCheckRestored(t, out)

	// A follower killed after it recorded -txid.next for its next commit,
	// before the commit (the hunt's child was SIGKILLed at a random
	// moment), leaves the output at at with -txid.next at+1.
	mustInsertReplicated(t, db, app, 10, 1)
	if err := os.WriteFile(litestream.NextTXIDPath(out), []byte((at+1).String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	wipeAndReseed(t, db, app, client, at+3)
	var logs syncBuffer
	follower = loggedFollower(t, client, &logs)
	stop, ended := startFollowEnding(follower, out)
	defer func() { _ = stop() }()
	select {
	case err := <-ended:
		if !isRefusal(err) || !strings.Contains(err.Error(), "numbered again") {
			t.Fatalf("follow ended with %v, want the refusal of a replica numbered again (ErrLTXCorrupted)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the resumed follower neither refused the re-seeded replica nor ended in 10 s; it logged:\n%s", logs.String())
	}
	if txid, _ := litestream.ReadTXIDFile(out); txid != at {
		t.Fatalf("the follower moved from %s to %s on the re-seeded replica's files", at, txid)
	}
	if got := MustCheckRestored(t, out); got != want {
		t.Fatalf("the output changed from %s to %s", want, got)
	}
}

// loggedFollower is a follower of client's replica logging to logs.
func loggedFollower(t *testing.T, client *file.ReplicaClient, logs *syncBuffer) *litestream.Replica {
	owner := litestream.NewDB(filepath.Join(t.TempDir(), "unused"))
	owner.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return litestream.NewReplicaWithClient(owner, file.NewReplicaClient(client.Path()))
}

// putBackOldCopyWhileRunning commits 2 rows, copies the replica, commits 3
// more, puts the copy back while db runs (default IndexRefreshInterval: it
// does not notice) and commits one more, uploaded past the hole: the
// replica holds L0 1-2 and 6, the primary has local copies of 3-5.
func putBackOldCopyWhileRunning(t *testing.T, db *litestream.DB, app *sql.DB, client *file.ReplicaClient) {
	t.Helper()
	mustInsertReplicated(t, db, app, 1, 2)
	old := saveReplicaCopy(t, client)
	mustInsertReplicated(t, db, app, 10, 3)
	putBackReplicaCopy(t, client, old)
	mustInsertReplicated(t, db, app, 20, 1)
}

// mustRestoreLatest checks that the replica's latest state restores and is
// want.
func mustRestoreLatest(t *testing.T, client *file.ReplicaClient, want, what string) {
	t.Helper()
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
	if err := litestream.NewReplicaWithClient(nil, client).Restore(context.Background(), opt); err != nil {
		t.Fatalf("%s, but the latest state does not restore: %v (L0 %v)", what, err, L0TXIDs(t, client))
	}
	if got := MustCheckRestored(t, opt.OutputPath); got != want {
		t.Fatalf("restored %s, the primary holds %s", got, want)
	}
}

// Found by TestReplica_FollowInterleavings with damage (seed 23): the
// primary notices the lost files at its next listing (here
// ResetLocalState's), which makes its next upload check that the replica
// still restores and upload a snapshot if not ("if the files left no
// longer restore the newest state (a wiped bucket, an older copy put
// back), it uploads a snapshot at once"). When that upload is Close's
// final one, the snapshot is taken on the closing DB and fails: Close
// returns "upload a snapshot after files were lost from the replica: ...
// database not open: closed". A DB object opened next on the same database
// (a restarted process) does not know files were lost: its SyncAndWait
// succeeds while the replica has no chain to its newest file, so no
// restore of the latest state works and every follower behind the hole
// ends with "replica history has been pruned", for good.
func TestReplica_CloseAfterNoticedLostFiles_NextOpenSnapshots(t *testing.T) {
	ctx := context.Background()
	path, app, client := mustAppWithReplica(t)
	db := mustOpenDamagedDB(t, path, client)
	putBackOldCopyWhileRunning(t, db, app, client)
	if err := db.ResetLocalState(ctx); err != nil {
		t.Fatal(err) // lists the replica: "replica files changed outside this process"
	}
	mustInsert(t, app, 30)
	closeErr := db.Close(ctx)

	db = mustOpenDamagedDB(t, path, client)
	mustInsertReplicated(t, db, app, 40, 2)
	mustRestoreLatest(t, client, MustDump(t, app), "SyncAndWait succeeded")
	if closeErr != nil {
		t.Fatalf("the replica restores, but Close returned %v", closeErr)
	}
}

// Found while reducing seed 23 of TestReplica_FollowInterleavings with
// damage: the same hole, never noticed by the primary before it closes.
// The README: "A DB closed and opened again forgets what it knew of the
// replica and lists it again, as a new process does." The same DB object
// opened again does: it finds the files gone, uploads them again from its
// local copies and the replica restores. A new DB object on the same
// database (a new process) lists a replica with a hole its local L0 copies
// could fill, and leaves it: SyncAndWait succeeds, the latest state does
// not restore.
func TestReplica_NewDBRestoresHoleFromOldCopy(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		newDB bool
	}{{"SameDB", false}, {"NewDB", true}} {
		t.Run(tt.name, func(t *testing.T) {
			path, app, client := mustAppWithReplica(t)
			db := mustOpenDamagedDB(t, path, client)
			putBackOldCopyWhileRunning(t, db, app, client)
			mustInsert(t, app, 30)
			if err := db.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if tt.newDB {
				db = mustOpenDamagedDB(t, path, client)
			} else if err := db.Open(); err != nil {
				t.Fatal(err)
			}
			mustInsertReplicated(t, db, app, 40, 2)
			mustRestoreLatest(t, client, MustDump(t, app), "SyncAndWait succeeded")
		})
	}
}

// Found by TestReplica_FollowInterleavings with damage (seed 308): the
// primary re-seeded a wiped replica from TXID 1 (its local L0 files were
// gone to retention), so its TXIDs 1-3 are another numbering than the
// replica's before. A copy of the replica from before the wipe (TXID 1 of
// the old numbering) is put back while the primary runs; its next upload,
// TXID 4, lands after the copy's TXID 1 unnoticed (default
// IndexRefreshInterval). The same DB closed and opened again lists the
// replica, finds L0 2 and 3 missing between the files it has, and uploads
// them again from its local copies ("uploaded lost replica file again")
// over the old numbering's TXID 1, which no local copy of this numbering
// proves. The replica then mixes two numberings: no restore past TXID 1
// works ("ltx file corrupted: WAL range ... does not continue"), while
// SyncAndWait succeeds; a follower of the old numbering at TXID 1 fails on
// TXID 2 ("a file of another database") and retries for ever.
// (ResetLocalState instead of Close and Open re-seeds after the copy, and
// the replica restores.)
func TestReplica_LostFilesNotUploadedOverAnotherNumbering(t *testing.T) {
	ctx := context.Background()
	path, app, client := mustAppWithReplica(t)
	db := mustOpenDamagedDB(t, path, client)
	db.Replica.IndexRefreshInterval = -1 // notice the wipe at once
	db.L0Retention = time.Nanosecond
	mustInsertReplicated(t, db, app, 1, 1)
	old := saveReplicaCopy(t, client)
	mustInsertReplicated(t, db, app, 2, 2)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(client.Path()); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 10, 3) // re-seeded: TXIDs 1-3 again
	if pos, err := db.Pos(); err != nil {
		t.Fatal(err)
	} else if pos.TXID != 3 {
		t.Fatalf("precondition: the primary re-seeded to TXID %s, want 3", pos.TXID)
	}

	db.Replica.IndexRefreshInterval = 0
	putBackReplicaCopy(t, client, old)
	mustInsertReplicated(t, db, app, 20, 1) // TXID 4, after the copy's 1
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	} else if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 21, 1)
	mustRestoreLatest(t, client, MustDump(t, app), "SyncAndWait succeeded")
}

// Found by the follow hunt with damage (seed 712): a copy of the replica
// from before a re-seed is put back while the primary runs, unnoticed; it
// ends at the primary's own TXID T, so the primary uploads its T+1 on top
// of the copy's T, and later uploads the snapshot it then owes. A follower
// whose output is the copy's state at T finds the replica's T is the file
// it got (the link is proven) and T+1 does not continue it. Before the fix
// it logged "follow failed" and retried for ever. With a snapshot past the
// break on the replica, the primary has moved on from the copy's history:
// the follower ends with the refusal, and the output stays at T.
func TestReplica_Follow_RefusesBreakPastProvenLinkCoveredBySnapshot(t *testing.T) {
	db, app, client := openReseedingPrimary(t, 4)
	out := filepath.Join(t.TempDir(), "follow.db")
	var logs syncBuffer
	at := mustFollowOnce(t, db, client, &logs, out)
	putBackPreReseedCopy(t, db, app, client, at)
	mustInsertReplicated(t, db, app, 201, 1) // notices, and snapshots
	if len(levelFiles(t, client, litestream.SnapshotLevel)) == 0 {
		t.Fatal("precondition: no snapshot past the break")
	}

	mustFollowRefused(t, client, &logs, out, fmt.Sprintf("a replica whose file after its TXID %s belongs to another history", at))
	if txid, err := litestream.ReadTXIDFile(out); err != nil || txid != at {
		t.Fatalf("output at %s (%v) after the refusal, want %s", txid, err, at)
	}
}

// Found by the follow hunt with damage (seed 1057): an older copy put back
// while the primary runs takes the L0 file the output was brought to its
// TXID T with; the primary, unaware, uploads T+1 and T+2 and a snapshot.
// The follower, no longer able to tie its output to the replica's files,
// proves each transaction by restoring the TXID it reaches, and T+1 no
// longer restores (the hole at T); after that failure it applies one file
// per transaction, so it kept proving T+1. Before the fix it retried that
// for ever, logging a line each time. The snapshot past the hole holds every page:
// the follower now applies it, and reaches the primary's state.
func TestReplica_Follow_HoleAtOutputTXIDBridgedBySnapshot(t *testing.T) {
	path, app, client := mustAppWithReplica(t)
	db := mustOpenManualDB(t, path, client)
	mustInsertReplicated(t, db, app, 1, 2)
	old := saveReplicaCopy(t, client)
	mustInsertReplicated(t, db, app, 10, 1)
	out := filepath.Join(t.TempDir(), "follow.db")
	var logs syncBuffer
	stop, ended := startFollowEnding(loggedFollower(t, client, &logs), out)
	defer func() { _ = stop() }()
	waitFollowed(t, db, out)
	putBackReplicaCopy(t, client, old)
	// T+1 starts a new WAL, so nothing but a restore ties it to the output.
	if err := db.Checkpoint(context.Background(), litestream.CheckpointModeTruncate); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 20, 1)
	// T+1 does not restore: the follower cannot commit it.
	waitFor(t, 10*time.Second, "the follower to fail proving T+1", func() bool {
		return strings.Contains(logs.String(), "follow failed")
	})
	if _, err := app.Exec(`DELETE FROM t`); err != nil {
		t.Fatal(err)
	} else if _, err := app.Exec(`VACUUM`); err != nil {
		t.Fatal(err)
	}
	mustInsertReplicated(t, db, app, 30, 1)
	mustSnapshot(t, db)
	waitFollowedOrEnded(t, db, out, ended)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
		t.Fatalf("output holds %s, the primary %s", got, want)
	}
	// The primary notices the lost file at its next listing and uploads
	// it again from its local copy.
	db.Replica.IndexRefreshInterval = -1
	mustInsertReplicated(t, db, app, 40, 1)
}

// Found by the follow hunt with damage (seed 1661, now and then): a
// replica re-seeded from TXID 1 whose new file at the output's TXID T
// touches only pages the output holds alike (here page 1, by a PRAGMA that
// rewrites it unchanged). A follower resumed at T compared those pages,
// found them equal and took its output for the replica's state at T,
// though the database at T is larger; the next file then failed the growth
// check as "a file of another database" and the follower retried for ever.
// The output's size must be the file's too: it now ends with the refusal.
func TestReplica_Follow_RefusesReseededFileMatchingOutputPages(t *testing.T) {
	db, app, client := openReseedingPrimary(t, 2)
	out := filepath.Join(t.TempDir(), "follow.db")
	var logs syncBuffer
	at := mustFollowOnce(t, db, client, &logs, out)
	wipeAndReseed(t, db, app, client, at-1)
	var version int
	if err := app.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		t.Fatal(err)
	} else if _, err := app.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, version)); err != nil {
		t.Fatal(err)
	} else if err := db.SyncAndWait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pos, err := db.Pos(); err != nil || pos.TXID != at {
		t.Fatalf("precondition: the primary at %v (%v), want TXID %s", pos.TXID, err, at)
	}
	mustInsertReplicated(t, db, app, 300, 1)

	mustFollowRefused(t, client, &logs, out, fmt.Sprintf("a replica numbered again up to its TXID %s", at))
}

// mustFollowOnce follows the replica into out until it reaches db's
// position, stops, and returns the output's TXID.
func mustFollowOnce(t *testing.T, db *litestream.DB, client *file.ReplicaClient, logs *syncBuffer, out string) ltx.TXID {
	t.Helper()
	stop, _ := startFollowEnding(loggedFollower(t, client, logs), out)
	waitFollowed(t, db, out)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	at, err := litestream.ReadTXIDFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// mustFollowRefused resumes following into out and checks that the
// follower ends with the refusal within 10 s; over names the replica.
func mustFollowRefused(t *testing.T, client *file.ReplicaClient, logs *syncBuffer, out, over string) {
	t.Helper()
	stop, ended := startFollowEnding(loggedFollower(t, client, logs), out)
	defer func() { _ = stop() }()
	select {
	case err := <-ended:
		if !isRefusal(err) {
			t.Fatalf("follow ended with %v, want the refusal", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the follower did not end within 10s over %s\n%s", over, logs.String())
	}
}

// Found by the follow hunt (seed 2021): a follower stopped at TXID T while
// its primary compacted T+1..T+3 into L1, took a snapshot past them and
// pruned every file up to T (retention by TXID, as a follower offline
// longer than the retention meets). Resumed, the follower could no longer
// tie its output to the replica's files; it bridged with the L1 file from
// T+1 and, as a later file shrinks the database, committed before that
// file: the proof restores the TXID reached, which no longer restores
// (nothing holds TXIDs up to T), and the next round bridged with the same
// file for ever.
// After a proof whose TXID does not restore, the snapshot goes first.
func TestReplica_Follow_ResumedPastPrunedHistoryBridgedBySnapshot(t *testing.T) {
	ctx := context.Background()
	path, app, client := mustAppWithReplica(t)
	db := mustOpenManualDB(t, path, client)
	mustInsertReplicated(t, db, app, 1, 2)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "follow.db")
	var logs syncBuffer
	at := mustFollowOnce(t, db, client, &logs, out)

	mustExecReplicated(t, db, app, `INSERT INTO t (v, pad) VALUES (10, randomblob(40000))`)
	mustInsertReplicated(t, db, app, 11, 2)
	l1, err := db.Compact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	} else if l1.MinTXID != at+1 {
		t.Fatalf("precondition: L1 from %s, want %s", l1.MinTXID, at+1)
	}
	// The database shrinks: the follower commits before that file.
	mustExecReplicated(t, db, app, `DELETE FROM t`)
	mustExecReplicated(t, db, app, `VACUUM`)
	mustSnapshot(t, db)
	mustInsertReplicated(t, db, app, 30, 1)
	for _, level := range []int{0, 1} {
		if err := db.EnforceRetentionByTXID(ctx, level, l1.MaxTXID); err != nil {
			t.Fatal(err)
		}
	}
	opt := litestream.NewRestoreOptions()
	opt.OutputPath, opt.TXID = filepath.Join(t.TempDir(), "check.db"), l1.MaxTXID
	if err := db.Replica.Restore(ctx, opt); !errors.Is(err, litestream.ErrTxNotAvailable) {
		t.Fatalf("precondition: restore of TXID %s: %v, want it not available", l1.MaxTXID, err)
	}

	stop, ended := startFollowEnding(loggedFollower(t, client, &logs), out)
	defer func() { _ = stop() }()
	waitFollowedOrEnded(t, db, out, ended)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
		t.Fatalf("output holds %s, the primary %s", got, want)
	}
}

// Found by the follow hunt with damage (seed 2844): as in
// TestReplica_Follow_RefusesBreakPastProvenLinkCoveredBySnapshot, but the
// follower's output is at T, two TXIDs before the break: the replica's
// files T+1 and T+2 continue the output, T+3 does not. The follower
// applied all three in one transaction and, refusing T+3, rolled back the
// two before it, so the output stayed at T, a TXID no damage touched. The
// files before the break are the replica's own state, as a retry of one
// file per transaction would have kept: they are committed first, and the
// output ends at T+2.
func TestReplica_Follow_RefusalKeepsFilesBeforeTheBreak(t *testing.T) {
	db, app, client := openReseedingPrimary(t, 2)
	out := filepath.Join(t.TempDir(), "follow.db")
	var logs syncBuffer
	at := mustFollowOnce(t, db, client, &logs, out)
	mustInsertReplicated(t, db, app, 50, 2)
	before := MustDump(t, app)
	putBackPreReseedCopy(t, db, app, client, at+2)
	mustInsertReplicated(t, db, app, 201, 1) // notices, and snapshots
	if len(levelFiles(t, client, litestream.SnapshotLevel)) == 0 {
		t.Fatal("precondition: no snapshot past the break")
	}

	mustFollowRefused(t, client, &logs, out, fmt.Sprintf("a replica whose file after TXID %s belongs to another history", at+2))
	if txid, err := litestream.ReadTXIDFile(out); err != nil || txid != at+2 {
		t.Fatalf("output at %s (%v) after the refusal, want %s", txid, err, at+2)
	}
	if got := MustCheckRestored(t, out); got != before {
		t.Fatalf("output holds %s, the replica's state at %s is %s", got, at+2, before)
	}
}
