// follow_resume_test.go: a follower restarted after a commit whose TXID its
// sidecar does not record yet, and one whose sidecar cannot be written.
// Every commit of the output must show a state the writer committed.
package litestream_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/faultclient"
	"github.com/superfly/ltx"
)

// failOpenClient fails every OpenLTXFile of one L0 file while fail is set,
// and counts the opens of the L0 file before it: one a follow round.
type failOpenClient struct {
	litestream.ReplicaClient
	min        ltx.TXID
	fail       atomic.Bool
	opensFirst atomic.Int64
}

func (c *failOpenClient) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	if c.fail.Load() && level == 0 && minTXID == c.min {
		return nil, errors.New("injected: backend unavailable")
	} else if level == 0 && minTXID == c.min-1 && offset == 0 && size == 0 {
		c.opensFirst.Add(1)
	}
	return c.ReplicaClient.OpenLTXFile(ctx, level, minTXID, maxTXID, offset, size)
}

// seqsOf returns the seq column of table, in order.
func seqsOf(t *testing.T, db *sql.DB, table string) []int {
	t.Helper()
	rows, err := db.Query(`SELECT seq FROM ` + table + ` ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	var out []int
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// outputSeqs reads tables a and b of the follow output.
func outputSeqs(t *testing.T, out string) (a, b []int) {
	t.Helper()
	rd, err := sql.Open("sqlite", "file:"+out+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rd.Close() }()
	return seqsOf(t, rd, "a"), seqsOf(t, rd, "b")
}

// checkEveryFollowCommit checks, at each commit of the output, that a row in
// b comes with all of wantA in a: the writer committed wantA first.
func checkEveryFollowCommit(t *testing.T, out string, wantA []int) *atomic.Int64 {
	var commits atomic.Int64
	litestream.SetFollowCommitHook(t, func(txid ltx.TXID) {
		commits.Add(1)
		a, b := outputSeqs(t, out)
		if len(b) > 0 && !slices.Equal(a[:min(len(a), len(wantA))], wantA) {
			t.Errorf("the follower committed TXID %s showing a=%v b=%v: b's row without all of a=%v, a state the writer never committed", txid, a, b, wantA)
		}
	})
	return &commits
}

// crashedFollowOutput restores the replica's latest state (TXID reached)
// into a new output and leaves the records a follower that committed up to
// reached, then crashed before its sidecar write, leaves: sidecar at
// recorded, next at reached.
func crashedFollowOutput(t *testing.T, client litestream.ReplicaClient, recorded, reached ltx.TXID) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "follow.db")
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = out
	opt.TXID = reached
	if err := litestream.NewReplicaWithClient(nil, client).Restore(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	if err := litestream.WriteTXIDFile(out, recorded); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(litestream.NextTXIDPath(out), []byte(reached.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// seqWriter creates tables a and b and returns the TXID synced then and a
// function committing one statement as one synced TXID.
func seqWriter(t *testing.T, db *litestream.DB, app *sql.DB, extra string) (ltx.TXID, func(stmt string) ltx.TXID) {
	t.Helper()
	commit := func(stmt string) ltx.TXID {
		t.Helper()
		return mustExecReplicated(t, db, app, stmt)
	}
	return commit(`CREATE TABLE a (seq INTEGER PRIMARY KEY); CREATE TABLE b (seq INTEGER PRIMARY KEY)` + extra), commit
}

// The follower committed R+1..R+3 in one transaction and crashed before its
// sidecar recorded R+3. On restart R+2 cannot be read for a while: the
// follower must not commit R+1 alone onto an output that may hold R+3.
func TestReplica_Follow_ResumeAfterCommitBeforeSidecarWithError(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	r, commit := seqWriter(t, db, app, "")
	commit(`INSERT INTO a VALUES (1)`)
	commit(`INSERT INTO a VALUES (2)`)
	if got := commit(`INSERT INTO b VALUES (3)`); got != r+3 {
		t.Fatalf("writer at %s, want %s", got, r+3)
	}
	out := crashedFollowOutput(t, client, r, r+3)
	commits := checkEveryFollowCommit(t, out, []int{1, 2})

	fc := &failOpenClient{ReplicaClient: client, min: r + 2}
	fc.fail.Store(true)
	stop := startFollow(litestream.NewReplicaWithClient(nil, fc), out)
	waitFor(t, 10*time.Second, "three rounds to fail on R+2", func() bool { return fc.opensFirst.Load() >= 3 })
	if n := commits.Load(); n != 0 {
		t.Fatalf("%d commits while the follower could not reach R+3", n)
	}
	fc.fail.Store(false)
	waitFor(t, 10*time.Second, "the sidecar to record R+3", func() bool {
		txid, _ := litestream.ReadTXIDFile(out)
		return txid == r+3
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
		t.Fatalf("output %s, source %s", got, want)
	}
}

// The same crash, and while the follower was down compaction put R..R+2
// into one L1 file larger than one follow transaction takes and retention
// removed their L0 files: the resume bridges through it and must not commit
// part-way, at R+2, onto an output that may hold R+4.
func TestReplica_Follow_ResumeAfterCommitBeforeSidecarThroughLargeL1(t *testing.T) {
	ctx := context.Background()
	db, app, client := MustOpenDB(t, 4096)
	db.L0Retention = time.Nanosecond
	_, commit := seqWriter(t, db, app, `; CREATE TABLE c (x BLOB)`)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	r := commit(`INSERT INTO c VALUES (randomblob(36000000))`) // more pages than one follow transaction takes
	commit(`INSERT INTO a VALUES (1)`)
	commit(`INSERT INTO a VALUES (2)`)
	if _, err := db.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	commit(`INSERT INTO a VALUES (3)`)
	last := commit(`INSERT INTO b VALUES (4)`)
	if err := db.EnforceL0RetentionByTime(ctx); err != nil {
		t.Fatal(err)
	}
	if l0 := L0TXIDs(t, client); len(l0) == 0 || l0[0] <= r+1 {
		t.Fatalf("L0 %v still holds R+1 (%s): the resume would not bridge through L1", l0, r+1)
	}
	out := crashedFollowOutput(t, client, r, last)
	commits := checkEveryFollowCommit(t, out, []int{1, 2, 3})

	stop := startFollow(litestream.NewReplicaWithClient(nil, client), out)
	waitFor(t, 30*time.Second, "the sidecar to record the last TXID", func() bool {
		txid, _ := litestream.ReadTXIDFile(out)
		return txid == last
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if commits.Load() == 0 {
		t.Fatal("the follower never committed")
	}
	if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
		t.Fatalf("output %s, source %s", got, want)
	}
}

// Without a crash: the sidecar cannot be written (here a directory stands
// in its way). The follower goes on from what it committed, never applying
// a batch's first file alone onto the batch's result, and records the TXID
// once it can.
func TestReplica_Follow_SidecarWriteFails(t *testing.T) {
	db, app, client := MustOpenDB(t, 4096)
	r, commit := seqWriter(t, db, app, "")

	var logs syncBuffer
	owner := litestream.NewDB(filepath.Join(t.TempDir(), "unused"))
	owner.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	fc := faultclient.New(client, faultclient.Config{})
	out := filepath.Join(t.TempDir(), "follow.db")
	stop := startFollow(litestream.NewReplicaWithClient(owner, fc), out)
	waitFor(t, 10*time.Second, "the follower at R", func() bool {
		txid, _ := litestream.ReadTXIDFile(out)
		return txid == r
	})
	checkEveryFollowCommit(t, out, []int{1, 2})

	// Three TXIDs the follower sees at once: a gets 1, a gets 2, b gets 3.
	for i := ltx.TXID(1); i <= 3; i++ {
		fc.Hide(0, r+i, r+i)
	}
	commit(`INSERT INTO a VALUES (1)`)
	commit(`INSERT INTO a VALUES (2)`)
	commit(`INSERT INTO b VALUES (3)`)
	side := litestream.TXIDPath(out)
	if err := os.Remove(side); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(side, "blocker"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := ltx.TXID(1); i <= 3; i++ {
		fc.Unhide(0, r+i, r+i)
	}
	waitFor(t, 10*time.Second, "the sidecar write to fail", func() bool { return strings.Contains(logs.String(), "follow failed") })

	// Later commits still reach the output.
	commit(`INSERT INTO b VALUES (4)`)
	waitFor(t, 10*time.Second, "the output to show b=4", func() bool {
		_, b := outputSeqs(t, out)
		return slices.Contains(b, 4)
	})
	if err := os.RemoveAll(side); err != nil {
		t.Fatal(err)
	}
	last := commit(`INSERT INTO a VALUES (5)`)
	waitFor(t, 10*time.Second, "the sidecar to record the last TXID", func() bool {
		txid, _ := litestream.ReadTXIDFile(out)
		return txid == last
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := MustCheckRestored(t, out), MustDump(t, app); got != want {
		t.Fatalf("output %s, source %s", got, want)
	}
	if n := strings.Count(logs.String(), "follow failed"); n > 2 {
		t.Fatalf("the same failure was logged %d times:\n%s", n, logs.String())
	}
}
