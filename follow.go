// Follow mode: a restored database kept up to date by applying each new
// replica file as one SQLite write transaction, so readers see whole TXIDs.

package litestream

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/benbjohnson/litestream/internal"
	"github.com/superfly/ltx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// TXIDPath returns the path of the follow-mode sidecar for a restored
// database: the TXID it has applied up to.
func TXIDPath(outputPath string) string { return outputPath + "-txid" }

// WriteTXIDFile atomically records txid in the sidecar of outputPath.
func WriteTXIDFile(outputPath string, txid ltx.TXID) error {
	return writeTXID(TXIDPath(outputPath), txid)
}

// ReadTXIDFile returns the TXID in the sidecar of outputPath, 0 if none.
func ReadTXIDFile(outputPath string) (ltx.TXID, error) {
	return readTXID(TXIDPath(outputPath))
}

// nextTXIDPath is the follower's record of the TXID its commit in progress
// reaches, written before the commit. After a crash between a commit and
// the sidecar write the output may hold any state from the sidecar's TXID
// to this one; applying every file between them in one transaction brings
// it to this one from any of them.
func nextTXIDPath(outputPath string) string { return TXIDPath(outputPath) + ".next" }

func writeTXID(path string, txid ltx.TXID) error {
	if _, err := internal.WriteFileAtomic(path, internal.Perm{Mode: 0o644, UID: -1, GID: -1}, strings.NewReader(txid.String()+"\n")); err != nil {
		return fmt.Errorf("write txid file %s: %w", path, err)
	}
	return nil
}

func readTXID(path string) (ltx.TXID, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	txid, err := ltx.ParseTXID(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("parse txid file: %w", err)
	}
	return txid, nil
}

// resumeFollow continues following into an existing output from its sidecar.
func (r *Replica) resumeFollow(ctx context.Context, opt RestoreOptions) error {
	txid, err := ReadTXIDFile(opt.OutputPath)
	if err != nil {
		return fmt.Errorf("read txid file for crash recovery: %w", err)
	} else if txid == 0 {
		if txid, err = r.adoptPlacedTXID(opt.OutputPath); err != nil {
			return err
		}
	}

	// The saved TXID must still be continuable: some file must start at or
	// before the next TXID, unless nothing newer exists at all. A snapshot
	// past it counts: it holds every page, so bridge applies it over the
	// output when retention removed the files in between.
	var newest ltx.TXID
	continuable := false
	for level := SnapshotLevel; level >= 0; level-- {
		infos, err := listFrom(ctx, r.Client, level, 0)
		if err != nil {
			return fmt.Errorf("list L%d: %w", level, err)
		}
		for _, info := range infos {
			newest = max(newest, info.MaxTXID)
			if info.MinTXID <= txid+1 && info.MaxTXID > txid {
				continuable = true
			}
		}
	}
	if newest > txid && !continuable {
		return fmt.Errorf("cannot resume follow mode from txid %s: replica history has been pruned", txid)
	}
	return r.follow(ctx, opt, txid, chainLink{})
}

// adoptPlacedTXID returns the TXID of an output a follower placed and was
// stopped before it wrote -txid: placeRestored writes -txid.next first, and
// nothing else leaves -txid.next without -txid. Follow then proves the
// output against the replica's file at that TXID, as on every resume.
func (r *Replica) adoptPlacedTXID(outputPath string) (ltx.TXID, error) {
	txid, err := readTXID(nextTXIDPath(outputPath))
	if err != nil {
		return 0, fmt.Errorf("read txid file for crash recovery: %w", err)
	} else if txid == 0 {
		return 0, fmt.Errorf("cannot resume follow mode: database exists but no -txid file found; delete %s to restore from scratch", outputPath)
	}
	if err := WriteTXIDFile(outputPath, txid); err != nil {
		return 0, err
	}
	r.Logger().Info("follow resuming an output placed without its -txid", "txid", txid)
	return txid, nil
}

// follow applies new replica files to the output every FollowInterval until
// ctx ends. Errors are logged once per change and retried on the next tick.
// restored is the last file of the restore that just made the output, if
// one did.
func (r *Replica) follow(ctx context.Context, opt RestoreOptions, txid ltx.TXID, restored chainLink) error {
	interval := opt.FollowInterval
	if interval <= 0 {
		interval = DefaultFollowInterval
	}
	var out *followOutput
	defer func() {
		if out == nil {
			// A failed tick closed it; reopen it for the checkpoint.
			octx, cancel := context.WithTimeout(context.Background(), followCloseCheckpointWait)
			out, _ = openFollowOutput(octx, opt.OutputPath)
			cancel()
			if out == nil {
				return
			}
		}
		// Leave the output file complete by itself for other tools.
		if done, err := out.checkpointOnExit(); err != nil {
			r.Logger().Warn("follow checkpoint on exit failed", "error", err)
		} else if !done {
			r.Logger().Info("follow checkpoint on exit incomplete: readers hold the WAL", "wait", followCloseCheckpointWait)
		}
		_ = out.close()
	}()
	removeFollowChecks(opt.OutputPath, r.Logger())
	// A commit may have landed after the sidecar's TXID: the first
	// transaction must reach the TXID recorded before it.
	reach, err := readTXID(nextTXIDPath(opt.OutputPath))
	if err != nil {
		return fmt.Errorf("read txid file for crash recovery: %w", err)
	} else if reach > txid {
		r.Logger().Info("follow resuming a transaction that may have committed", "txid", txid, "reach", reach)
	}

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var lastErr string
	waitingBehind := false
	link := restored // the file the output was brought to txid with, once known
	// A proof that failed fails again on the same files: each retry would
	// otherwise restore the whole database again.
	var refused struct {
		from, to ltx.TXID
		err      error
	}
	// A proof whose TXID does not restore (a hole below it) is retried
	// from a higher level or a snapshot past the hole, if any: one holds
	// every page of the state it reaches.
	bridgeFirst := false
	var checked [2]ltx.TXID // the last proof logged
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}

		err := func() (err error) {
			if out == nil {
				if out, err = openFollowOutput(ctx, opt.OutputPath); err != nil {
					return err
				}
				out.link = link
			}
			out.prove = func(ctx context.Context, o *followOutput, from, to ltx.TXID) error {
				if refused.err != nil && refused.from == from && refused.to == to {
					return refused.err
				}
				if checked != [2]ltx.TXID{from, to} {
					checked = [2]ltx.TXID{from, to}
					r.Logger().Info("follow checking output against a restore: the replica no longer holds the file it was brought to its TXID with", "txid", from, "check", to)
				}
				err := r.proveFollowOutput(ctx, o, from, to, opt.Parallelism)
				if errors.Is(err, errOutputDiffers) {
					refused.from, refused.to, refused.err = from, to, err
				} else if errors.Is(err, ErrTxNotAvailable) {
					bridgeFirst = true
				}
				return err
			}
			out.bridgeFirst = bridgeFirst
			// After a failure, one file per transaction finds the file at
			// fault and keeps the files before it.
			out.maxFiles = 0
			if lastErr != "" {
				out.maxFiles = 1
			}
			out.mustReach = reach
			out.committing = func(next ltx.TXID) error {
				return writeTXID(nextTXIDPath(opt.OutputPath), next)
			}
			// The output is at next once its transaction commits, whether
			// or not the sidecar records it: the next round goes on from
			// there, and a crash first is covered by the record above.
			out.applied = func(next ltx.TXID) error {
				txid, reach = next, 0
				if err := WriteTXIDFile(opt.OutputPath, next); err != nil {
					return err
				}
				r.Logger().Debug("follow applied", "txid", next)
				return nil
			}
			_, err = r.applyNewFiles(ctx, out, txid)
			link = out.link
			return err
		}()
		if err != nil && out != nil {
			// Closing rolls back whatever the connection still holds; the
			// next tick starts from a fresh one.
			_ = out.close()
			out = nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			waitingBehind = r.logReplicaBehind(out, txid, waitingBehind)
			bridgeFirst = false
		}
		if err == nil && lastErr != "" {
			r.Logger().Info("follow resumed", "txid", txid)
			lastErr = ""
		} else if err != nil && err.Error() != lastErr {
			r.Logger().Error("follow failed", "txid", txid, "error", err)
			lastErr = err.Error()
		}
		var replaced *replicaReplacedError
		if errors.As(err, &replaced) {
			return fmt.Errorf("follow %s: %w", opt.OutputPath, err) // retrying cannot help
		}
	}
}

// logReplicaBehind logs, once each, that the replica fell behind the output
// and that it reaches it again, and returns whether it is behind now. The
// follower waits meanwhile: the replica may be put back, or its primary
// may upload the lost files again; files of another history past the
// output's TXID are refused when they come.
func (r *Replica) logReplicaBehind(out *followOutput, txid ltx.TXID, was bool) bool {
	behind := out != nil && out.behind
	if behind && !was {
		r.Logger().Warn("follow waiting: the replica holds nothing at or past the output's TXID (wiped, put back from an older copy, or replaced); following goes on when it does, and ends with an error if that is another history",
			"txid", txid, "replica_txid", out.replicaNewest)
	} else if !behind && was {
		r.Logger().Info("follow: the replica reaches the output's TXID again", "txid", txid)
	}
	return behind
}

// replicaReplacedError refuses a follow output whose history the replica
// no longer holds: another database's files are there now. Follow mode
// ends with it, as no retry can help; the output is left as it was.
type replicaReplacedError struct{ err error }

func (e *replicaReplacedError) Error() string { return e.err.Error() }
func (e *replicaReplacedError) Unwrap() error { return e.err }

// applyNewFiles applies L0 files after cur, bridging holes in L0 from
// higher levels, and returns the TXID committed. On error the open
// transaction is left for out.close to roll back.
func (r *Replica) applyNewFiles(ctx context.Context, out *followOutput, cur ltx.TXID) (ltx.TXID, error) {
	out.done = cur
	if _, err := r.applyPending(ctx, out, cur); err != nil {
		return out.done, err
	} else if err := out.commit(ctx); err != nil {
		return out.done, err
	}
	return out.done, nil
}

// applyPending writes files after cur into out's transactions and returns
// the TXID written, committed or not.
func (r *Replica) applyPending(ctx context.Context, out *followOutput, cur ltx.TXID) (ltx.TXID, error) {
	// Listed from cur, not cur+1: the same request shows whether the
	// replica still reaches the output's TXID (see followOutput.behind).
	listed, err := listFrom(ctx, r.Client, 0, cur)
	if err != nil {
		return cur, fmt.Errorf("list L0: %w", err)
	}
	var newest ltx.TXID
	infos := listed[:0:0]
	for _, info := range listed {
		newest = max(newest, info.MaxTXID)
		if info.MinTXID > cur {
			infos = append(infos, info)
		}
	}
	start := cur
	var prev chainLink
	if len(infos) == 0 || infos[0].MinTXID > cur+1 || out.bridgeFirst {
		var higher ltx.TXID
		if cur, prev, higher, err = r.bridge(ctx, out, cur); err != nil {
			return cur, err
		}
		newest = max(newest, higher)
	}
	if err := r.checkOutputTXIDFile(ctx, out, start, listed, newest); err != nil {
		return start, err
	}
	for _, info := range infos {
		if info.MaxTXID <= cur {
			continue
		}
		if info.MinTXID > cur+1 {
			if cur > start {
				return cur, nil // progress made; a hole that remains is reported next round
			}
			return cur, fmt.Errorf("non-contiguous ltx files: have up to %s but next file starts at %s (gap before %s)", cur, info.MinTXID,
				LTXFilePath("", info.Level, info.MinTXID, info.MaxTXID))
		}
		if prev, err = r.linkAt(ctx, out, cur, prev); err != nil {
			return cur, err
		} else if prev, err = r.applyFile(ctx, out, info, prev); err != nil {
			return cur, err
		}
		cur = info.MaxTXID
	}
	return cur, nil
}

// checkOutputTXIDFile watches the replica's file at the output's TXID
// start, which the L0 listing from start shows, and records whether the
// replica, whose newest TXID is newest, fell behind the output. Back at the
// output's TXID after falling behind it, or with the file there listed with
// another size or time than when it was applied, that file must still be
// the one the output was brought there with, not another numbering's that
// reached the same TXID: it is checked once, as linkAt checks it.
func (r *Replica) checkOutputTXIDFile(ctx context.Context, out *followOutput, start ltx.TXID, listed []*ltx.FileInfo, newest ltx.TXID) error {
	rewritten := false
	for _, info := range listed {
		switch f := out.linkFile; {
		case info.MaxTXID != start:
		case f.MaxTXID != start:
			out.linkFile = *info // first seen since a restore or reopen: the baseline
		case info.MinTXID == f.MinTXID && (info.Size != f.Size || !info.CreatedAt.Equal(f.CreatedAt)):
			rewritten = true
			out.linkFile = *info // checked once
		}
	}
	if (rewritten || out.behind && newest >= start) && start > 0 {
		if _, err := r.linkAt(ctx, out, start, chainLink{}); err != nil {
			return err
		}
	}
	out.behind, out.replicaNewest = newest < start && start > 0, newest
	return nil
}

// linkAt returns prev if it is the file that brought the output to cur, or
// else what can be found out about that file.
func (r *Replica) linkAt(ctx context.Context, out *followOutput, cur ltx.TXID, prev chainLink) (chainLink, error) {
	if prev.hdr.MaxTXID == cur && cur != 0 {
		return prev, nil
	} else if out.link.hdr.MaxTXID == cur && cur != 0 {
		// Applied by this process: the replica's file at cur must still be
		// that file. Another L0 file there is another database's; a
		// compacted file may be written again by the same database, and a
		// file gone proves nothing either way.
		link := out.link
		hdr, err := readRemoteHeaderOf(ctx, r.Client, &ltx.FileInfo{Level: link.level, MinTXID: link.hdr.MinTXID, MaxTXID: cur})
		switch {
		case err == nil && hdr != link.hdr && link.level == 0:
			return chainLink{}, &replicaReplacedError{fmt.Errorf("%w: the replica's L0 file at TXID %s is not the one the output was brought there with: %s", ErrLTXCorrupted, cur, replicaReplacedAdvice)}
		case err == nil && hdr != link.hdr, errors.Is(err, os.ErrNotExist):
			link.unproven = true
		case err != nil:
			return chainLink{}, fmt.Errorf("read header of %s: %w", link.path(), err)
		}
		return link, nil
	}
	return r.outputLink(ctx, out, cur)
}

// replicaReplacedAdvice ends every refusal of a replica whose history is no
// longer the output's: the two ways it happens, and what to do.
const replicaReplacedAdvice = "the replica was replaced by another database's, or numbered again from an earlier TXID (a primary re-seeds a wiped or rolled-back replica with a snapshot at the replica's next TXID); restore again into a new output"

// outputLink stands for the file that brought the output to cur, for
// checking that the next file continues it: the output's size, and the WAL
// range of L0 cur if the replica still has it. That file's pages must be
// the output's: a replica wiped and written again by another database has
// other pages at the same TXID.
func (r *Replica) outputLink(ctx context.Context, out *followOutput, cur ltx.TXID) (chainLink, error) {
	pages, err := out.pageCount(ctx)
	if err != nil {
		return chainLink{}, fmt.Errorf("read follow output size: %w", err)
	}
	link := chainLink{level: -1, hdr: ltx.Header{MinTXID: cur, MaxTXID: cur}}
	if cur != 0 && out.mustReach > cur {
		// The output may hold a later commit: L0 cur's pages may have
		// changed since. Only the WAL range can be compared.
		if hdr, err := readRemoteHeader(ctx, r.Client, 0, cur); err == nil && hdr.MinTXID == cur && hdr.MaxTXID == cur {
			link = chainLink{level: 0, hdr: hdr, walOnly: true}
		} else {
			link.unproven = true
		}
	} else if cur != 0 {
		info := &ltx.FileInfo{Level: 0, MinTXID: cur, MaxTXID: cur}
		rd := newResumableReader(ctx, r.Client, info, nil)
		a := newPageApplier(&outputComparer{ctx: ctx, out: out, pageSize: int64(out.pageSize)})
		err := a.apply(rd, info)
		_ = rd.Close()
		if err == nil && a.prev.hdr.Commit != pages {
			// The file's pages may be alike by chance (a file touching a
			// few pages); the database it leaves has its own size.
			err = fmt.Errorf("%w: the output has %d pages, the database at TXID %s has %d", errOutputDiffers, pages, cur, a.prev.hdr.Commit)
		}
		switch {
		case err == nil:
			link = chainLink{level: 0, hdr: a.prev.hdr}
		case errors.Is(err, errOutputDiffers):
			return chainLink{}, &replicaReplacedError{fmt.Errorf("%w: the output at TXID %s does not hold the pages of the replica's L0 file at that TXID (%w): %s", ErrLTXCorrupted, cur, err, replicaReplacedAdvice)}
		case !errors.Is(err, os.ErrNotExist):
			return chainLink{}, fmt.Errorf("check follow output against L0 %s: %w", cur, err)
		default:
			// Retention removed it: nothing left shows that the replica
			// still holds the output's history.
			link.unproven = true
		}
	}
	link.hdr.Commit = pages
	return link, nil
}

// proveFollowOutput checks that the output's open transaction, applied
// from TXID from over a link the replica no longer holds, holds the
// replica's database at TXID to: it restores that TXID next to the output
// and compares every page. A replica wiped and written again by another
// database fails it unless the files applied rewrote every page, which
// leaves exactly the replica's database, never a mix.
func (r *Replica) proveFollowOutput(ctx context.Context, out *followOutput, from, to ltx.TXID, parallelism int) error {
	dir, err := os.MkdirTemp(filepath.Dir(out.path), followCheckPattern(out.path))
	if err != nil {
		return fmt.Errorf("create follow check directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, "db")
	if err := r.Restore(ctx, RestoreOptions{OutputPath: path, TXID: to, Parallelism: parallelism}); err != nil {
		return fmt.Errorf("restore TXID %s to check the follow output brought there from TXID %s: %w", to, from, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open follow check restore: %w", err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat follow check restore: %w", err)
	}
	differs := func(err error) error {
		return &replicaReplacedError{fmt.Errorf("%w: the replica no longer holds the file the output at TXID %s was brought there with, and the output brought on to TXID %s does not hold the replica's database at that TXID (%w): %s", ErrLTXCorrupted, from, to, err, replicaReplacedAdvice)}
	}
	pageSize := int64(out.pageSize)
	if want := int64(out.commitN) * pageSize; fi.Size() != want {
		return differs(fmt.Errorf("%w: %d pages, the replica's database has %d bytes", errOutputDiffers, out.commitN, fi.Size()))
	}
	cmp := &outputComparer{ctx: ctx, out: out, pageSize: pageSize, grown: out.w.grown}
	buf := make([]byte, 64*pageSize)
	for off := int64(0); off < fi.Size(); off += int64(len(buf)) {
		n, err := io.ReadFull(f, buf)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read follow check restore: %w", err)
		}
		if _, err := cmp.WriteAt(buf[:n], off); errors.Is(err, errOutputDiffers) {
			return differs(err)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// followCheckPattern names the directories proveFollowOutput restores into,
// beside the output and named after it.
func followCheckPattern(outputPath string) string {
	return "." + filepath.Base(outputPath) + "-litestream-follow-check-*"
}

// removeFollowChecks removes the check directories of an earlier follower
// of the output that died during a check: each holds a whole database.
func removeFollowChecks(outputPath string, logger *slog.Logger) {
	parent := filepath.Dir(outputPath)
	entries, _ := os.ReadDir(parent)
	prefix := strings.TrimSuffix(followCheckPattern(outputPath), "*")
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if dir := filepath.Join(parent, e.Name()); os.RemoveAll(dir) != nil {
			logger.Warn("cannot remove a follow check directory left by a crash", "path", dir)
		}
	}
}

// errOutputDiffers is a follow output page that is not the replica's.
var errOutputDiffers = errors.New("page differs")

// outputComparer is a WriterAt that compares pages with the follow
// output's instead of writing them. Page 1's header fields that the
// follower, or its own SQLite on every commit, writes are not compared
// (see followOwnHeader).
type outputComparer struct {
	ctx      context.Context
	out      *followOutput
	pageSize int64
	// grown holds the checksums of pages the open transaction wrote past
	// the output's size: sqlite_dbpage reads none of them before it commits.
	grown map[uint32]uint64
}

func (c *outputComparer) WriteAt(p []byte, off int64) (int, error) {
	for i := int64(0); i < int64(len(p)); i += c.pageSize {
		pgno := uint32((off+i)/c.pageSize) + 1
		if pgno == ltx.LockPgno(uint32(c.pageSize)) {
			continue
		}
		var have []byte
		if err := c.out.conn.QueryRowContext(c.ctx, `SELECT data FROM sqlite_dbpage WHERE pgno = ?`, pgno).Scan(&have); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return int(i), fmt.Errorf("read output page %d: %w", pgno, err)
		}
		want := p[i : i+c.pageSize]
		if pgno == 1 && len(have) == len(want) {
			have, want = bytes.Clone(have), bytes.Clone(want)
			for _, r := range followOwnHeader {
				clear(have[r[0]:r[1]])
				clear(want[r[0]:r[1]])
			}
		}
		if sum, ok := c.grown[pgno]; ok && have == nil {
			if crc64.Checksum(want, crcISO) != sum {
				return int(i), fmt.Errorf("%w: page %d", errOutputDiffers, pgno)
			}
			continue
		}
		if !bytes.Equal(have, want) {
			return int(i), fmt.Errorf("%w: page %d", errOutputDiffers, pgno)
		}
	}
	return len(p), nil
}

// followOwnHeader are the byte ranges of page 1 that the follower's
// commits write whatever the replica holds there, so the replica's page 1
// differs in them from a healthy output's: 18..20, the read and write
// versions (the output is in WAL mode); 24..28, the change counter; 28..32,
// the in-header size; 92..96, the version-valid-for counter (all set by
// bumpCounter); 96..100, SQLITE_VERSION_NUMBER, which SQLite stamps with
// its own version whenever a commit writes page 1, so an app linking
// another SQLite than the follower's leaves another one in the replica.
// The other header fields change only with the database's content.
var followOwnHeader = [][2]int{{18, 20}, {24, 32}, {92, 100}}

// bridge applies higher-level files that continue from prev, for when L0
// retention removed the files right after it. When no level below the
// snapshots continues it (snapshot retention removed their files too), the
// newest snapshot past cur does: it holds every page of the database at
// its TXID, so the output becomes exactly that state. The snapshot goes
// first after a failed proof (bridgeLevels). It also returns the highest
// TXID the levels it listed hold.
func (r *Replica) bridge(ctx context.Context, out *followOutput, cur ltx.TXID) (_ ltx.TXID, prev chainLink, newest ltx.TXID, _ error) {
	for _, level := range bridgeLevels(out.bridgeFirst) {
		infos, err := listFrom(ctx, r.Client, level, 0)
		if err != nil {
			return cur, prev, newest, fmt.Errorf("list L%d: %w", level, err)
		}
		for _, info := range infos {
			newest = max(newest, info.MaxTXID)
		}
		if level == SnapshotLevel {
			// One snapshot is enough; older ones would only be rewritten.
			infos = newestSnapshotAfter(infos, cur)
		}
		start := cur
		for _, info := range infos {
			if info.MinTXID > cur+1 {
				break
			} else if info.MaxTXID <= cur {
				continue
			}
			if prev, err = r.linkAt(ctx, out, cur, prev); err != nil {
				return cur, prev, newest, err
			} else if prev, err = r.applyFile(ctx, out, info, prev); err != nil {
				return cur, prev, newest, err
			}
			cur = info.MaxTXID
		}
		if cur > start {
			return cur, prev, newest, nil
		}
	}
	return cur, prev, newest, nil
}

// bridgeLevels returns the levels bridge tries, in order: the lowest first,
// whose files are smallest. After a proof found the TXID reached not
// restorable, the snapshot goes first: a compacted file may end at that
// same TXID, and the proof of it would fail again for ever; the snapshot's
// own TXID restores from it.
func bridgeLevels(snapshotFirst bool) []int {
	levels := make([]int, 0, SnapshotLevel)
	if snapshotFirst {
		levels = append(levels, SnapshotLevel)
	}
	for level := 1; level < SnapshotLevel; level++ {
		levels = append(levels, level)
	}
	if !snapshotFirst {
		levels = append(levels, SnapshotLevel)
	}
	return levels
}

// newestSnapshotAfter returns the snapshot continuing cur with the highest
// MaxTXID, if any (the same test as resumeFollow's).
func newestSnapshotAfter(infos []*ltx.FileInfo, cur ltx.TXID) []*ltx.FileInfo {
	var newest *ltx.FileInfo
	for _, info := range infos {
		if info.MinTXID <= cur+1 && info.MaxTXID > cur && (newest == nil || info.MaxTXID > newest.MaxTXID) {
			newest = info
		}
	}
	if newest == nil {
		return nil
	}
	return []*ltx.FileInfo{newest}
}

// applyFile downloads and verifies a whole file, checking that it continues
// prev, then writes it into the output's transaction, committing when the
// transaction is full, so that a corrupt or foreign file changes nothing
// and readers never see a half-applied one. It returns the link for the
// next file.
func (r *Replica) applyFile(ctx context.Context, out *followOutput, info *ltx.FileInfo, prev chainLink) (chainLink, error) {
	path := LTXFilePath("", info.Level, info.MinTXID, info.MaxTXID)
	spool, err := os.CreateTemp(filepath.Dir(out.path), ".litestream-follow-*.ltx")
	if err != nil {
		return prev, fmt.Errorf("create spool file: %w", err)
	}
	_ = os.Remove(spool.Name())
	defer func() { _ = spool.Close() }()

	rd := newResumableReader(ctx, r.Client, info, nil)
	_, err = io.Copy(spool, rd)
	_ = rd.Close()
	if err != nil {
		return prev, NewLTXError("open", path, info.Level, uint64(info.MinTXID), uint64(info.MaxTXID), err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return prev, err
	}
	// A dry run of the page applier checks everything the real run would.
	check := newPageApplier(discardWriterAt{})
	check.prev = prev
	if err := check.apply(spool, info); err != nil {
		err = NewLTXError("verify", path, info.Level, uint64(info.MinTXID), uint64(info.MaxTXID), err)
		var broken *chainBrokenError
		if errors.As(err, &broken) && (prev.unproven || prev.walOnly || r.snapshotPast(ctx, info.MinTXID)) {
			// The replica no longer holds the file the output was brought
			// to its TXID with (or nothing showed that it does), and its
			// next file does not continue the output: no retry can change
			// that. Nor can one when the replica's own files break there
			// and a snapshot lies past the break: its primary has moved on
			// from the output's history.
			// The files before it continue the output: they are kept, as
			// a retry one file per transaction would keep them. If they
			// cannot be (a proof fails), the output stays as it was.
			if out.tx && out.pending >= out.mustReach {
				_ = out.commit(ctx)
			}
			return prev, &replicaReplacedError{fmt.Errorf("%w: %s", err, replicaReplacedAdvice)}
		}
		return prev, err
	}
	// Pages of another size would land at the wrong offsets.
	if check.pageSize != out.pageSize {
		return prev, NewLTXError("verify", path, info.Level, uint64(info.MinTXID), uint64(info.MaxTXID),
			fmt.Errorf("page size %d, the database has %d", check.pageSize, out.pageSize))
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return prev, err
	}
	// Over a link the replica may no longer hold, only a WAL continued
	// from it ties the file to the output; otherwise the transaction is
	// compared with the replica's database before it commits.
	// A transaction compared so starts with that file, recording its
	// growth from the start.
	unproven := prev.unproven && !prev.walContinues(info.Level, check.prev.hdr)
	if out.tx && (!out.takes(check.commit) || unproven && !out.unproven) {
		if err := out.commit(ctx); err != nil {
			return prev, fmt.Errorf("commit before L%d %s-%s: %w", info.Level, info.MinTXID, info.MaxTXID, err)
		}
	}
	if unproven && !out.unproven {
		out.unproven, out.unprovenFrom = true, prev.hdr.MaxTXID
	}
	if err := out.write(ctx, spool, info); err != nil {
		return prev, fmt.Errorf("apply L%d %s-%s: %w", info.Level, info.MinTXID, info.MaxTXID, err)
	}
	out.pendingLink, out.pendingLinkFile = check.prev, *info
	if out.full() {
		if err := out.commit(ctx); err != nil {
			return prev, fmt.Errorf("apply up to L%d %s-%s: %w", info.Level, info.MinTXID, info.MaxTXID, err)
		}
	}
	return check.prev, nil
}

// snapshotPast reports whether the replica holds a snapshot at txid or
// later. It lists the snapshot level, once per broken chain only.
func (r *Replica) snapshotPast(ctx context.Context, txid ltx.TXID) bool {
	infos, err := listFrom(ctx, r.Client, SnapshotLevel, 0)
	if err != nil {
		return false // unknown: retry, as for any other failure
	}
	for _, info := range infos {
		if info.MaxTXID >= txid {
			return true
		}
	}
	return false
}

// discardWriterAt drops what is written to it.
type discardWriterAt struct{}

func (discardWriterAt) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

// followPageHook, when set by tests, is called after each page of a
// transaction is written with the count written so far; an error fails the
// apply.
var followPageHook func(written int) error

// followCommitHook, when set by tests, is called after each commit of the
// output with the TXID it reached.
var followCommitHook func(ltx.TXID)

// followBusyTimeout bounds each wait for another writer of the output, so
// that the follower notices its context ending.
const followBusyTimeout = 100 * time.Millisecond

// A transaction holds consecutive files up to these limits: readers then
// jump several TXIDs at once, still whole ones, and a follower far behind
// catches up in few commits.
const (
	followBatchFiles = 64
	followBatchPages = 8192
)

// followCheckpointPages is the WAL size, in pages, past which a commit runs
// a PASSIVE checkpoint (SQLite's auto-checkpoint): it never waits for
// readers, and keeps the WAL from growing while some reader is always open.
const followCheckpointPages = 1000

// followCloseCheckpointWait bounds the TRUNCATE checkpoint on exit.
const followCloseCheckpointWait = 2 * time.Second

// followOutput is the follower's one SQLite connection to the output, kept
// in WAL mode. Pages go in through the sqlite_dbpage table, so each
// transaction is an ordinary SQLite commit: readers in this process and
// others see it whole or not at all, a crash leaves only uncommitted WAL
// frames that readers ignore, and a commit never waits for readers.
// Nothing else in this process may open the output with os.Open: closing
// that descriptor would drop the connection's POSIX locks.
type followOutput struct {
	path     string
	db       *sql.DB
	conn     *sql.Conn
	pageSize uint32

	// maxFiles is the most files one transaction holds; 0 means
	// followBatchFiles.
	maxFiles int

	// mustReach, if past the output's sidecar TXID, is where the first
	// transaction must reach before it commits (see nextTXIDPath).
	mustReach ltx.TXID

	// committing, if set, is called before each commit with the TXID the
	// transaction reaches; an error fails the commit.
	committing func(ltx.TXID) error

	// applied, if set, is called after each commit with the TXID reached.
	applied func(ltx.TXID) error

	// unproven says the open transaction went on from unprovenFrom over a
	// link the replica may no longer hold: before it commits, prove must
	// show that it holds the replica's database at the TXID it reaches.
	unproven     bool
	unprovenFrom ltx.TXID
	prove        func(ctx context.Context, o *followOutput, from, to ltx.TXID) error

	// The open transaction, if tx is set.
	tx      bool
	stmt    *sql.Stmt
	w       *dbpageWriter
	counter uint32   // change counter when the transaction began
	files   int      // files written in the transaction
	first   uint32   // database size in pages after the first file
	commitN uint32   // database size in pages after the last file
	pending ltx.TXID // TXID the transaction reaches

	done ltx.TXID // TXID of the last commit

	// bridgeFirst says a proof found the TXID the L0 files reach not
	// restorable: higher levels and snapshots are tried before them.
	bridgeFirst bool

	// behind says the last round found nothing at or past the output's
	// TXID (wiped, put back from an older copy, or replaced); retention
	// keeps the newest L0 file, so a replica that still reaches the output
	// always shows a file there. replicaNewest is the newest TXID it saw.
	behind        bool
	replicaNewest ltx.TXID

	// linkFile is link's file as listed when it was applied: a listing
	// that shows it with another size or time shows it written again.
	linkFile, pendingLinkFile ltx.FileInfo

	// link is the file the last commit ended with, pendingLink the last
	// file written into the open transaction.
	link, pendingLink chainLink
}

func openFollowOutput(ctx context.Context, path string) (_ *followOutput, err error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open follow output: %w", err) // sql.Open would create it
	}
	dsn := sqliteFileURI(path, fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=synchronous(full)&_pragma=wal_autocheckpoint(%d)",
		followBusyTimeout.Milliseconds(), followCheckpointPages))
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open follow output: %w", err)
	}
	db.SetMaxOpenConns(1)
	o := &followOutput{path: path, db: db}
	defer func() {
		if err != nil {
			_ = o.close()
		}
	}()
	if o.conn, err = db.Conn(ctx); err != nil {
		return nil, fmt.Errorf("open follow output: %w", err)
	}
	// WAL mode: a commit never waits for readers, so none can starve the
	// follower; outputs left in rollback mode by older followers switch
	// once no reader holds them.
	var mode string
	if err := o.conn.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
		return nil, fmt.Errorf("set follow output to WAL mode: %w", err)
	} else if mode != "wal" {
		return nil, fmt.Errorf("set follow output to WAL mode: still in %s mode", mode)
	}
	var pageSize uint32
	if err := o.conn.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize); err != nil {
		return nil, fmt.Errorf("read follow output page size: %w", err)
	}
	o.pageSize = pageSize
	return o, nil
}

// close rolls back any open transaction and closes the connection.
func (o *followOutput) close() error {
	o.rollback()
	if o.conn != nil {
		_ = o.conn.Close()
	}
	return o.db.Close()
}

// rollback drops the open transaction, if any.
func (o *followOutput) rollback() {
	if !o.tx {
		return
	}
	if o.stmt != nil { // nil when begin failed before preparing it
		_ = o.stmt.Close()
	}
	_, _ = o.conn.ExecContext(context.Background(), `ROLLBACK`)
	o.tx, o.stmt, o.w = false, nil, nil
}

// checkpointOnExit copies the WAL into the database file and truncates it,
// so that the file alone is complete for tools that read it directly. It
// waits for readers at most followCloseCheckpointWait and reports whether
// it finished.
func (o *followOutput) checkpointOnExit() (bool, error) {
	o.rollback()
	ctx, cancel := context.WithTimeout(context.Background(), followCloseCheckpointWait)
	defer cancel()
	for {
		var busy, logN, done int
		err := o.conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logN, &done)
		if err == nil && busy == 0 {
			return true, nil
		} else if err != nil && !isBusy(err) {
			return false, fmt.Errorf("checkpoint follow output: %w", err)
		} else if ctx.Err() != nil {
			return false, nil
		}
	}
}

// pageCount returns the output's size in pages.
func (o *followOutput) pageCount(ctx context.Context) (uint32, error) {
	var n uint32
	err := o.conn.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&n)
	return n, err
}

// begin opens a write transaction and notes the change counter.
func (o *followOutput) begin(ctx context.Context) error {
	// A WAL commit that holds page 1 sets the counter to one past the
	// value SQLite last read from disk, which a page 1 kept in the cache
	// leaves stale: empty the cache so it reads the current one.
	if _, err := o.conn.ExecContext(ctx, `PRAGMA shrink_memory`); err != nil {
		return fmt.Errorf("empty page cache: %w", err)
	}
	if _, err := o.conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	o.tx = true
	var page1 []byte
	if err := o.conn.QueryRowContext(ctx, `SELECT data FROM sqlite_dbpage WHERE pgno = 1`).Scan(&page1); err != nil {
		return fmt.Errorf("read page 1: %w", err)
	} else if len(page1) < 100 {
		return fmt.Errorf("read page 1: %d bytes", len(page1))
	}
	o.counter = binary.BigEndian.Uint32(page1[24:28])
	stmt, err := o.conn.PrepareContext(ctx, `INSERT INTO sqlite_dbpage (pgno, data) VALUES (?, ?)`)
	if err != nil {
		return fmt.Errorf("prepare page write: %w", err)
	}
	o.stmt = stmt
	o.w = &dbpageWriter{ctx: ctx, stmt: stmt, pageSize: int64(o.pageSize), lockPgno: ltx.LockPgno(o.pageSize)}
	if o.unproven {
		if o.w.base, err = o.pageCount(ctx); err != nil {
			return fmt.Errorf("read size: %w", err)
		}
		o.w.grown = make(map[uint32]uint64)
	}
	o.files, o.commitN = 0, 0
	return nil
}

// write writes a verified LTX file's pages into the open transaction,
// opening one if none is. On error the transaction is left for close to
// roll back.
func (o *followOutput) write(ctx context.Context, r io.Reader, info *ltx.FileInfo) error {
	if !o.tx {
		if err := o.begin(ctx); err != nil {
			return err
		}
	}
	o.w.ctx = ctx
	a := newPageApplier(o.w)
	a.onPage = setWALPage
	if err := a.apply(r, info); err != nil {
		return err
	}
	if o.files == 0 {
		o.first = a.commit
	}
	o.files++
	o.commitN, o.pending = a.commit, info.MaxTXID
	return nil
}

// takes reports whether a file leaving the database at commit pages may
// join the open transaction. A transaction never ends smaller than its
// first file: after a crash between its commit and the sidecar write, its
// first file is applied again onto its result, and must not have to grow it.
func (o *followOutput) takes(commit uint32) bool {
	return o.tx && (commit >= o.first || o.pending < o.mustReach)
}

// full reports whether the open transaction should commit before taking
// another file.
func (o *followOutput) full() bool {
	maxFiles := o.maxFiles
	if maxFiles <= 0 {
		maxFiles = followBatchFiles
	}
	return o.tx && o.pending >= o.mustReach && (o.files >= maxFiles || o.w.written >= followBatchPages)
}

// commit truncates the output to the last file's size, moves the change
// counter on and commits, retrying while another writer holds the
// output, then reports the TXID reached. Without a transaction it does
// nothing.
func (o *followOutput) commit(ctx context.Context) error {
	if !o.tx {
		return nil
	} else if o.pending < o.mustReach {
		return fmt.Errorf("applied up to TXID %s, but the output may already hold TXID %s (a commit before a restart): applying again from the sidecar's TXID must reach it in one transaction", o.pending, o.mustReach)
	}
	if o.unproven {
		if o.prove == nil {
			return fmt.Errorf("applied from TXID %s to %s over a link the replica no longer holds, and nothing to check it with", o.unprovenFrom, o.pending)
		} else if err := o.prove(ctx, o, o.unprovenFrom, o.pending); err != nil {
			return err
		}
	}
	pages, err := o.pageCount(ctx)
	if err != nil {
		return fmt.Errorf("read size: %w", err)
	}
	if err := o.bumpCounter(ctx); err != nil {
		return err
	}
	if o.commitN > 0 && o.commitN < pages {
		// A NULL page truncates the database there when the transaction
		// commits; written last, as a later file may grow it again.
		if _, err := o.stmt.ExecContext(ctx, o.commitN+1, nil); err != nil {
			return fmt.Errorf("truncate to %d pages: %w", o.commitN, err)
		}
	}
	if o.committing != nil {
		if err := o.committing(o.pending); err != nil {
			return err
		}
	}
	for {
		// Not interruptible: the driver reports a COMMIT that completed
		// while ctx ended as failed, and -txid would then lag the output.
		_, err := o.conn.ExecContext(context.WithoutCancel(ctx), `COMMIT`)
		if err == nil {
			break
		} else if !isBusy(err) || ctx.Err() != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	_ = o.stmt.Close()
	o.tx, o.stmt, o.w, o.unproven = false, nil, nil, false
	o.done, o.mustReach, o.link, o.linkFile = o.pending, 0, o.pendingLink, o.pendingLinkFile
	if followCommitHook != nil {
		followCommitHook(o.done)
	}
	if o.applied != nil {
		return o.applied(o.pending)
	}
	return nil
}

// bumpCounter writes page 1 back with the change counter one past the
// transaction's start, and the header's size made valid for it, whether
// or not the files wrote page 1: a reader keeping its cache across
// transactions drops it only when the counter moves.
func (o *followOutput) bumpCounter(ctx context.Context) error {
	var page1 []byte
	if err := o.conn.QueryRowContext(ctx, `SELECT data FROM sqlite_dbpage WHERE pgno = 1`).Scan(&page1); err != nil {
		return fmt.Errorf("read page 1: %w", err)
	} else if len(page1) < 100 {
		return fmt.Errorf("read page 1: %d bytes", len(page1))
	}
	counter := o.counter + 1
	binary.BigEndian.PutUint32(page1[24:28], counter)
	binary.BigEndian.PutUint32(page1[92:96], counter)
	if o.commitN > 0 {
		binary.BigEndian.PutUint32(page1[28:32], o.commitN)
	}
	page1[18], page1[19] = 2, 2
	if _, err := o.stmt.ExecContext(ctx, 1, page1); err != nil {
		return fmt.Errorf("write page 1: %w", err)
	}
	return nil
}

func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// dbpageWriter writes runs of pages through sqlite_dbpage. The lock page
// is never part of a database, so a snapshot's zero-filled one is skipped.
type dbpageWriter struct {
	ctx      context.Context
	stmt     *sql.Stmt
	pageSize int64
	lockPgno uint32
	written  int

	// grown, if set, records the checksum of each page written past base
	// pages, for a transaction to be compared before it commits.
	base  uint32
	grown map[uint32]uint64
}

func (w *dbpageWriter) WriteAt(p []byte, off int64) (int, error) {
	for i := int64(0); i < int64(len(p)); i += w.pageSize {
		pgno := uint32((off+i)/w.pageSize) + 1
		if pgno == w.lockPgno {
			continue
		}
		if _, err := w.stmt.ExecContext(w.ctx, pgno, p[i:i+w.pageSize]); err != nil {
			return int(i), fmt.Errorf("insert page %d: %w", pgno, err)
		}
		if w.grown != nil && pgno > w.base {
			w.grown[pgno] = crc64.Checksum(p[i:i+w.pageSize], crcISO)
		}
		w.written++
		if followPageHook != nil {
			if err := followPageHook(w.written); err != nil {
				return int(i), err
			}
		}
	}
	return len(p), nil
}

// setWALPage keeps page 1 marking a WAL database, as the output is.
func setWALPage(pgno uint32, data []byte) error {
	if pgno == 1 {
		data[18], data[19] = 2, 2
	}
	return nil
}
