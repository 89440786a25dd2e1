// restore_race_test.go restores, latest, by TXID and by time, while a Store
// replicates, compacts, snapshots and deletes under the restores, and checks
// every result against a model of what one writer committed and when.
package litestream_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// restoreModel is what the writer did: row k (id = v = k) was committed in
// the transaction that began at began[k-1], and confirmed[txid] = k when
// WaitReplicated returned at TXID txid with k rows committed.
type restoreModel struct {
	mu        sync.Mutex
	began     []time.Time
	rows      int
	confirmed []confirmedRows
}

type confirmedRows struct {
	txid ltx.TXID
	rows int
	at   time.Time // when WaitReplicated returned: the files were uploaded
}

// Restores of every kind run while the Store's monitors compact into L1
// and L2, take snapshots and delete L0 files, snapshots and the levels
// below them within fractions of a second. Each result must be a state the
// writer committed: a latest restore holds at least every row confirmed
// before it began, a restore by TXID exactly the rows confirmed at that
// TXID, a restore by time no row whose transaction began at or after it.
// LITESTREAM_RESTORE_RACE_SECONDS sets how long (default 5),
// LITESTREAM_RESTORE_RACE_SEED replays a seed's choices.
func TestStore_RestoresWhileMaintaining(t *testing.T) {
	seconds := envInt(t, "LITESTREAM_RESTORE_RACE_SECONDS", 5)
	seed := time.Now().UnixNano()
	if s := envInt(t, "LITESTREAM_RESTORE_RACE_SEED", 0); s != 0 {
		seed = int64(s)
	}
	t.Logf("seed %d (replay: LITESTREAM_RESTORE_RACE_SEED=%d), %ds", seed, seed, seconds)
	ctx := context.Background()
	dir := t.TempDir()
	db, client, store := newStoreDB(t, dir, litestream.CompactionLevels{
		{Level: 0}, {Level: 1, Interval: 100 * time.Millisecond}, {Level: 2, Interval: 300 * time.Millisecond},
	})
	db.MonitorInterval = 10 * time.Millisecond
	db.Replica.SyncInterval = 10 * time.Millisecond
	db.MinCheckpointPageN = 16
	db.CheckpointInterval = 100 * time.Millisecond
	store.SnapshotInterval = 400 * time.Millisecond
	store.SnapshotRetention = time.Second
	store.L0Retention = 50 * time.Millisecond
	store.L0RetentionCheckInterval = 50 * time.Millisecond
	closeStore := mustOpenStore(t, store)
	app := MustOpenApp(t, db.Path(), 4096)

	runCtx, stop := context.WithTimeout(ctx, time.Duration(seconds)*time.Second)
	defer stop()
	var model restoreModel
	var stats restoreRaceStats
	var g errgroup.Group
	g.Go(func() error { return restoreRaceWriter(runCtx, db, app, rand.New(rand.NewSource(seed)), &model) })
	for r := int64(1); r <= 2; r++ {
		rng := rand.New(rand.NewSource(seed + r))
		g.Go(func() error { return restoreRaceReader(runCtx, db.Replica, rng, &model, &stats, dir) })
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}

	if err := db.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	if err := closeStore(); err != nil {
		t.Fatal(err)
	}
	MustVerifyReplica(t, client)
	if n, err := restoredRows(MustRestore(t, db.Replica, 0)); err != nil {
		t.Fatal(err)
	} else if n != model.rows {
		t.Fatalf("seed %d: the final restore holds %d rows, the writer committed %d", seed, n, model.rows)
	}
	if stats.latest == 0 || stats.byTXID == 0 || stats.byTime == 0 {
		t.Fatalf("seed %d: not every kind of restore succeeded: %d latest, %d by TXID, %d by time", seed, stats.latest, stats.byTXID, stats.byTime)
	}
	t.Logf("%d rows; restores: %d latest, %d by TXID (%d no longer available), %d by time (%d before the oldest file)",
		model.rows, stats.latest, stats.byTXID, stats.txidGone, stats.byTime, stats.timeGone)
}

type restoreRaceStats struct {
	mu                                         sync.Mutex
	latest, byTXID, txidGone, byTime, timeGone int
}

func (s *restoreRaceStats) add(n *int) {
	s.mu.Lock()
	*n++
	s.mu.Unlock()
}

// restoreRaceWriter commits one row per transaction, now and then a large
// one, and confirms one in six with WaitReplicated.
func restoreRaceWriter(ctx context.Context, db *litestream.DB, app *sql.DB, rng *rand.Rand, m *restoreModel) error {
	for k := 1; ctx.Err() == nil; k++ {
		pad := rng.Intn(200)
		if rng.Intn(10) == 0 {
			pad = 10000 + rng.Intn(30000) // several pages
		}
		m.mu.Lock()
		m.began = append(m.began, time.Now())
		m.mu.Unlock()
		if _, err := app.Exec(`INSERT INTO t (id, v, pad) VALUES (?, ?, randomblob(?))`, k, k, pad); err != nil {
			return fmt.Errorf("commit row %d: %w", k, err)
		}
		m.mu.Lock()
		m.rows = k
		m.mu.Unlock()
		if rng.Intn(6) != 0 {
			continue
		}
		txid, err := waitReplicatedTXID(db)
		if err != nil {
			return fmt.Errorf("row %d: %w", k, err)
		}
		m.mu.Lock()
		m.confirmed = append(m.confirmed, confirmedRows{txid, k, time.Now()})
		m.mu.Unlock()
	}
	return nil
}

// restoreRaceReader restores until ctx ends and checks each result.
func restoreRaceReader(ctx context.Context, r *litestream.Replica, rng *rand.Rand, m *restoreModel, stats *restoreRaceStats, dir string) error {
	start := time.Now()
	for i := 0; ctx.Err() == nil; i++ {
		opt := litestream.NewRestoreOptions()
		opt.OutputPath = filepath.Join(dir, "restores", strconv.FormatInt(rng.Int63(), 36), "db")
		m.mu.Lock()
		confirmed := append([]confirmedRows(nil), m.confirmed...)
		m.mu.Unlock()
		var what string
		var atLeast, want int
		switch kind := rng.Intn(3); {
		case kind == 0 || len(confirmed) == 0:
			what = "latest"
			if len(confirmed) > 0 {
				atLeast = confirmed[len(confirmed)-1].rows
			}
		case kind == 1:
			c := confirmed[rng.Intn(len(confirmed))]
			if recent := min(len(confirmed), 8); rng.Intn(2) == 0 {
				c = confirmed[len(confirmed)-1-rng.Intn(recent)] // likely still in L0
			}
			opt.TXID, want = c.txid, c.rows
			what = fmt.Sprintf("TXID %s", c.txid)
		default:
			// Mostly within the snapshot retention, where files remain.
			opt.Timestamp = time.Now().Add(-time.Duration(rng.Int63n(int64(min(time.Since(start), 1500*time.Millisecond)) + 1)))
			what = "time " + opt.Timestamp.Format(time.RFC3339Nano)
		}
		restoreStart := time.Now()
		var snaps map[string]bool
		if !opt.Timestamp.IsZero() {
			var err error
			if snaps, err = snapshotNames(r.Client); err != nil {
				return fmt.Errorf("restore %d (%s): %w", i, what, err)
			}
		}
		err := r.Restore(context.Background(), opt)
		if errors.Is(err, litestream.ErrTxNotAvailable) && opt.TXID == 0 && opt.Timestamp.IsZero() && atLeast == 0 {
			continue // nothing replicated yet
		} else if errors.Is(err, litestream.ErrTxNotAvailable) && (opt.TXID != 0 || !opt.Timestamp.IsZero()) {
			// Retention removed what this point needs: an error, never a
			// wrong database.
			if opt.TXID != 0 {
				if err := txidStillRestorable(r.Client, opt.TXID); err != nil {
					return fmt.Errorf("restore %d (%s): %w", i, what, err)
				}
				stats.add(&stats.txidGone)
			} else {
				stats.add(&stats.timeGone)
			}
			continue
		} else if err != nil {
			return fmt.Errorf("restore %d (%s): %w", i, what, err)
		}
		n, err := restoredRows(opt.OutputPath)
		if err != nil {
			return fmt.Errorf("restore %d (%s): %w", i, what, err)
		}
		switch {
		case opt.TXID != 0:
			if n != want {
				return fmt.Errorf("restore %d (%s) holds %d rows, %d were confirmed at that TXID", i, what, n, want)
			}
			stats.add(&stats.byTXID)
		case !opt.Timestamp.IsZero():
			m.mu.Lock()
			var began time.Time
			if n > 0 {
				began = m.began[n-1]
			}
			m.mu.Unlock()
			if n > 0 && !began.Before(opt.Timestamp) {
				return fmt.Errorf("restore %d (%s) holds row %d, whose transaction began at %s, not before that time", i, what, n, began.Format(time.RFC3339Nano))
			}
			if err := timeRestoreNotShort(r.Client, snaps, opt.Timestamp, restoreStart, n, m); err != nil {
				return fmt.Errorf("restore %d (%s): %w", i, what, err)
			}
			stats.add(&stats.byTime)
		default:
			if n < atLeast {
				return fmt.Errorf("restore %d (%s) holds %d rows, %d were confirmed before it began", i, what, n, atLeast)
			}
			stats.add(&stats.latest)
		}
	}
	return nil
}

// txidStillRestorable fails if, planned after a restore of txid reported
// it unavailable, a restore of txid is possible from files that were all
// there during that restore. Files only come and go: compaction adds files
// whose inputs were there before, and a snapshot at txid itself is the one
// file that could be new.
func txidStillRestorable(client litestream.ReplicaClient, txid ltx.TXID) error {
	plan, err := litestream.CalcRestorePlan(context.Background(), client, txid, time.Time{}, nil)
	if err != nil || (plan[0].Level == litestream.SnapshotLevel && plan[0].MaxTXID == txid) {
		return nil
	}
	var files []string
	for _, info := range plan {
		files = append(files, fmt.Sprintf("L%d %s-%s", info.Level, info.MinTXID, info.MaxTXID))
	}
	return fmt.Errorf("reported unavailable, yet a plan now reaches it: %s", strings.Join(files, ", "))
}

// timeRestoreNotShort fails if a plan for the same time made after a
// restore that began at began and returned rows reaches a TXID confirmed,
// before the restore began, with more rows. Every file up to that TXID was
// uploaded then; a compacted file is dated by its newest input, and its
// inputs are deleted only after it is written, so what a later plan
// reaches with files dated before the time, the restore could reach too.
// Not so a snapshot: dated when it starts reading the database, it lands
// after its upload, and the L0 files it holds may be gone by then (see
// TestReplica_Restore_TimestampSnapshotLandsMidRestore). The plan uses
// only snaps, the snapshots listed before the restore began.
func timeRestoreNotShort(client litestream.ReplicaClient, snaps map[string]bool, at, began time.Time, rows int, m *restoreModel) error {
	plan, err := litestream.CalcRestorePlan(context.Background(), &snapshotsAsOf{client, snaps}, 0, at, nil)
	if err != nil {
		return nil
	}
	reach := plan[len(plan)-1].MaxTXID
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.confirmed {
		if c.at.Before(began) && c.txid <= reach && c.rows > rows {
			var files []string // named, so that a failure shows which file is new
			for _, info := range plan {
				files = append(files, fmt.Sprintf("L%d %s-%s (%s)", info.Level, info.MinTXID, info.MaxTXID, info.CreatedAt.Format(time.RFC3339Nano)))
			}
			return fmt.Errorf("holds %d rows, yet a plan made afterwards reaches TXID %s, where %d rows were confirmed at %s: %s", rows, reach, c.rows, c.txid, strings.Join(files, ", "))
		}
	}
	return nil
}

// restoredRows checks a restored database's integrity and that it holds
// rows 1..n and nothing else, and returns n.
func restoredRows(path string) (int, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer func() { _ = db.Close() }()
	var check string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil {
		return 0, fmt.Errorf("integrity check: %w", err)
	} else if check != "ok" {
		return 0, fmt.Errorf("integrity check: %s", check)
	}
	var tables int
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 't'`).Scan(&tables); err != nil {
		return 0, err
	} else if tables == 0 {
		return 0, nil // restored from before the table was created
	}
	var n, maxID, sumBad int
	if err := db.QueryRow(`SELECT COUNT(*), IFNULL(MAX(id), 0), IFNULL(SUM(v != id), 0) FROM t`).Scan(&n, &maxID, &sumBad); err != nil {
		return 0, err
	} else if n != maxID || sumBad != 0 {
		return 0, fmt.Errorf("holds %d rows up to id %d (%d with v != id): not the rows 1..n one writer committed", n, maxID, sumBad)
	}
	return n, nil
}

// snapshotNames returns the names of the replica's snapshots.
func snapshotNames(client litestream.ReplicaClient) (map[string]bool, error) {
	itr, err := client.LTXFiles(context.Background(), litestream.SnapshotLevel, 0, false)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	infos, err := ltx.SliceFileIterator(itr)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	names := make(map[string]bool, len(infos))
	for _, info := range infos {
		names[ltx.FormatFilename(info.MinTXID, info.MaxTXID)] = true
	}
	return names, nil
}

// snapshotsAsOf lists, of the replica's snapshots, only those named in
// names: the ones there at an earlier listing.
type snapshotsAsOf struct {
	litestream.ReplicaClient
	names map[string]bool
}

func (c *snapshotsAsOf) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	itr, err := c.ReplicaClient.LTXFiles(ctx, level, seek, useMetadata)
	if err != nil || level != litestream.SnapshotLevel {
		return itr, err
	}
	infos, err := ltx.SliceFileIterator(itr)
	if err != nil {
		return nil, err
	}
	kept := infos[:0]
	for _, info := range infos {
		if c.names[ltx.FormatFilename(info.MinTXID, info.MaxTXID)] {
			kept = append(kept, info)
		}
	}
	return ltx.NewFileInfoSliceIterator(kept), nil
}
