package litestream

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/benbjohnson/litestream/internal"
	"github.com/superfly/ltx"
)

// TXIDPath returns the path of the follow-mode sidecar for a restored
// database: the TXID it has applied up to.
func TXIDPath(outputPath string) string { return outputPath + "-txid" }

// WriteTXIDFile atomically records txid in the sidecar of outputPath.
func WriteTXIDFile(outputPath string, txid ltx.TXID) error {
	path := TXIDPath(outputPath)
	if _, err := internal.WriteFileAtomic(path, internal.Perm{Mode: 0o644, UID: -1, GID: -1}, strings.NewReader(txid.String()+"\n")); err != nil {
		return fmt.Errorf("write txid file %s: %w", path, err)
	}
	return nil
}

// ReadTXIDFile returns the TXID in the sidecar of outputPath, 0 if none.
func ReadTXIDFile(outputPath string) (ltx.TXID, error) {
	b, err := os.ReadFile(TXIDPath(outputPath))
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
		return fmt.Errorf("cannot resume follow mode: database exists but no -txid file found; delete %s to restore from scratch", opt.OutputPath)
	}

	// The saved TXID must still be continuable: some file must start at or
	// before the next TXID, unless nothing newer exists at all.
	var newest ltx.TXID
	continuable := false
	for level := SnapshotLevel; level >= 0; level-- {
		infos, err := listFrom(ctx, r.Client, level, 0)
		if err != nil {
			return fmt.Errorf("list L%d: %w", level, err)
		}
		for _, info := range infos {
			newest = max(newest, info.MaxTXID)
			if level != SnapshotLevel && info.MinTXID <= txid+1 && info.MaxTXID > txid {
				continuable = true
			}
		}
	}
	if newest > txid && !continuable {
		return fmt.Errorf("cannot resume follow mode from txid %s: replica history has been pruned", txid)
	}
	return r.follow(ctx, opt, txid)
}

// followErrorLogInterval rate-limits follow errors, which repeat every tick
// until the replica is fixed.
const followErrorLogInterval = 10 * time.Second

// follow applies new replica files to the output every FollowInterval until
// ctx ends. Errors are logged and retried on the next tick.
func (r *Replica) follow(ctx context.Context, opt RestoreOptions, txid ltx.TXID) error {
	interval := opt.FollowInterval
	if interval <= 0 {
		interval = DefaultFollowInterval
	}
	f, err := os.OpenFile(opt.OutputPath, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open follow output: %w", err)
	}
	defer func() { _ = f.Close() }()
	if err := setRollbackMode(f); err != nil {
		return fmt.Errorf("prepare follow output: %w", err)
	}

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var lastLogAt time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}

		next, err := r.applyNewFiles(ctx, f, txid)
		if next > txid {
			if err := WriteTXIDFile(opt.OutputPath, next); err != nil {
				return err
			}
			r.Logger().Debug("follow applied", "txid", next)
			txid = next
		}
		if err != nil && ctx.Err() == nil && time.Since(lastLogAt) >= followErrorLogInterval {
			lastLogAt = time.Now()
			r.Logger().Error("follow failed", "txid", txid, "error", err)
		}
	}
}

// applyNewFiles applies L0 files after cur, bridging holes in L0 from
// higher levels, and returns the TXID reached.
func (r *Replica) applyNewFiles(ctx context.Context, f *os.File, cur ltx.TXID) (ltx.TXID, error) {
	infos, err := listFrom(ctx, r.Client, 0, cur+1)
	if err != nil {
		return cur, fmt.Errorf("list L0: %w", err)
	}
	start := cur
	var prev chainLink
	if len(infos) == 0 || infos[0].MinTXID > cur+1 {
		if cur, prev, err = r.bridge(ctx, f, cur); err != nil {
			return cur, err
		}
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
		if prev, err = r.linkAt(ctx, f, cur, prev); err != nil {
			return cur, err
		} else if prev, err = r.applyFile(ctx, f, info, prev); err != nil {
			return cur, err
		}
		cur = info.MaxTXID
	}
	return cur, nil
}

// linkAt returns prev if it is the file that brought the output to cur, or
// else what can be found out about that file.
func (r *Replica) linkAt(ctx context.Context, f *os.File, cur ltx.TXID, prev chainLink) (chainLink, error) {
	if prev.hdr.MaxTXID == cur && cur != 0 {
		return prev, nil
	}
	return r.outputLink(ctx, f, cur)
}

// outputLink stands for the file that brought the output to cur, for
// checking that the next file continues it: the output's size, and the WAL
// range of L0 cur if the replica still has it (one header read).
func (r *Replica) outputLink(ctx context.Context, f *os.File, cur ltx.TXID) (chainLink, error) {
	pageSize, err := readPageSize(f)
	if err != nil {
		return chainLink{}, fmt.Errorf("read follow output page size: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return chainLink{}, fmt.Errorf("stat follow output: %w", err)
	}
	link := chainLink{level: -1, hdr: ltx.Header{MinTXID: cur, MaxTXID: cur}}
	if hdr, err := readRemoteHeader(ctx, r.Client, 0, cur); err == nil && hdr.MinTXID == cur && hdr.MaxTXID == cur {
		link = chainLink{level: 0, hdr: hdr}
	}
	link.hdr.Commit = uint32(fi.Size() / int64(pageSize))
	return link, nil
}

// readRemoteHeader reads the header of a replica file.
func readRemoteHeader(ctx context.Context, client ReplicaClient, level int, txid ltx.TXID) (ltx.Header, error) {
	rc, err := client.OpenLTXFile(ctx, level, txid, txid, 0, ltx.HeaderSize)
	if err != nil {
		return ltx.Header{}, err
	}
	defer func() { _ = rc.Close() }()
	b := make([]byte, ltx.HeaderSize)
	if _, err := io.ReadFull(rc, b); err != nil {
		return ltx.Header{}, err
	}
	var hdr ltx.Header
	return hdr, hdr.UnmarshalBinary(b)
}

// bridge applies higher-level files that continue from prev, for when L0
// retention removed the files right after it.
func (r *Replica) bridge(ctx context.Context, f *os.File, cur ltx.TXID) (ltx.TXID, chainLink, error) {
	var prev chainLink
	for level := 1; level < SnapshotLevel; level++ {
		infos, err := listFrom(ctx, r.Client, level, 0)
		if err != nil {
			return cur, prev, fmt.Errorf("list L%d: %w", level, err)
		}
		start := cur
		for _, info := range infos {
			if info.MinTXID > cur+1 {
				break
			} else if info.MaxTXID <= cur {
				continue
			}
			if prev, err = r.linkAt(ctx, f, cur, prev); err != nil {
				return cur, prev, err
			} else if prev, err = r.applyFile(ctx, f, info, prev); err != nil {
				return cur, prev, err
			}
			cur = info.MaxTXID
		}
		if cur > start {
			return cur, prev, nil
		}
	}
	return cur, prev, nil
}

// applyFile downloads and verifies a whole file, checking that it continues
// prev, then writes its pages into the output under SQLite's locks, so that
// a corrupt or foreign file changes nothing and readers never see a
// half-applied one. It returns the link for the next file.
func (r *Replica) applyFile(ctx context.Context, f *os.File, info *ltx.FileInfo, prev chainLink) (chainLink, error) {
	path := LTXFilePath("", info.Level, info.MinTXID, info.MaxTXID)
	spool, err := os.CreateTemp(filepath.Dir(f.Name()), ".litestream-follow-*.ltx")
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
		return prev, NewLTXError("verify", path, info.Level, uint64(info.MinTXID), uint64(info.MaxTXID), err)
	}
	// Pages of another size would land at the wrong offsets.
	if pageSize, err := readPageSize(f); err != nil {
		return prev, fmt.Errorf("read follow output page size: %w", err)
	} else if check.pageSize != pageSize {
		return prev, NewLTXError("verify", path, info.Level, uint64(info.MinTXID), uint64(info.MaxTXID),
			fmt.Errorf("page size %d, the database has %d", check.pageSize, pageSize))
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return prev, err
	}

	if err := lockDatabase(f); err != nil {
		return prev, fmt.Errorf("lock follow output: %w", err)
	}
	defer func() { _ = unlockDatabase(f) }()
	if err := writeLTXPages(f, spool, info); err != nil {
		return prev, fmt.Errorf("apply L%d %s-%s: %w", info.Level, info.MinTXID, info.MaxTXID, err)
	}
	return check.prev, nil
}

// discardWriterAt drops what is written to it.
type discardWriterAt struct{}

func (discardWriterAt) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

// writeLTXPages writes a verified LTX file's pages into a database file.
func writeLTXPages(f *os.File, r io.Reader, info *ltx.FileInfo) error {
	a := newPageApplier(f)
	a.onPage = func(pgno uint32, data []byte) error {
		if pgno != 1 {
			return nil
		}
		// Rollback-journal mode, so readers don't look for a WAL; a new
		// change counter, so other connections drop their caches.
		data[18], data[19] = 1, 1
		_, err := rand.Read(data[24:28])
		return err
	}
	if err := a.apply(r, info); err != nil {
		return err
	} else if err := f.Sync(); err != nil {
		return err
	}
	if a.commit > 0 {
		if err := f.Truncate(int64(a.commit) * int64(a.pageSize)); err != nil {
			return err
		}
	}
	return f.Sync()
}

// readPageSize reads the page size from a database file's header.
func readPageSize(f *os.File) (uint32, error) {
	var b [2]byte
	if _, err := f.ReadAt(b[:], 16); err != nil {
		return 0, err
	}
	if n := binary.BigEndian.Uint16(b[:]); n != 1 {
		return uint32(n), nil
	}
	return 65536, nil
}

// setRollbackMode marks the database as a rollback-journal database, so
// readers take the file locks the follower honours instead of using a WAL.
func setRollbackMode(f *os.File) error {
	if err := lockDatabase(f); err != nil {
		return err
	}
	defer func() { _ = unlockDatabase(f) }()
	if _, err := f.WriteAt([]byte{1, 1}, 18); err != nil {
		return err
	}
	return f.Sync()
}

// SQLite's lock bytes in the database file.
const (
	sqlitePendingByte = 0x40000000
	sqliteSharedFirst = sqlitePendingByte + 2
	sqliteSharedSize  = 510
)
