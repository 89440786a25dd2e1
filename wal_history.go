// The WAL-history decision behind "never lose a committed transaction":
// whether the next L0 file may continue where the last one left the WAL, by
// named checks that each give the reason when it may not, and the check
// that the WAL did not restart while its frames were copied.

package litestream

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/superfly/ltx"
)

// capture is where the newest L0 file left the WAL: the generation (salts)
// and the offset just past its last frame.
type capture struct {
	path   string // the newest L0 file
	salts  [2]uint32
	end    int64 // 0 for a file not captured from a WAL
	commit uint32
}

// restartWitness records a WAL restart this process caused and proved safe:
// the generation with salts ended exactly at end, every frame of it in an
// L0 file, and the generation after it has salts next.
type restartWitness struct {
	salts [2]uint32
	end   int64
	next  [2]uint32
}

// capturedAt reads where the L0 file at pos left the WAL.
func (db *DB) capturedAt(pos ltx.Pos) (capture, error) {
	if pos.TXID == 0 {
		return capture{end: WALHeaderSize}, nil
	}
	path := db.LTXPath(0, pos.TXID, pos.TXID)
	hdr, err := readLTXHeaderFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if path, err = db.newestL0Path(pos.TXID); err == nil {
			hdr, err = readLTXHeaderFile(path)
		}
	}
	if err != nil {
		return capture{}, err
	}
	if hdr.WALOffset == 0 {
		// A compacted file fetched from the replica: no WAL frame of this
		// database was captured into it.
		return capture{path: path, commit: hdr.Commit}, nil
	}
	return capture{path: path, salts: [2]uint32{hdr.WALSalt1, hdr.WALSalt2}, end: hdr.WALOffset + hdr.WALSize, commit: hdr.Commit}, nil
}

// newestL0Path returns the path of the newest local L0 file, which ends at
// txid and, not holding just txid, was fetched from the replica: a
// compacted file.
func (db *DB) newestL0Path(txid ltx.TXID) (string, error) {
	path := db.LTXPath(0, txid, txid)
	minTXID, maxTXID, err := db.MaxLTX()
	if err != nil {
		return "", fmt.Errorf("find newest L0 file: %w", err)
	} else if maxTXID != txid {
		return "", NewLTXError("open", path, 0, uint64(txid), uint64(txid), os.ErrNotExist)
	}
	return db.LTXPath(0, minTXID, maxTXID), nil
}

// verify decides where the next L0 file starts. This is the one place that
// enforces the capture invariant: the next file continues the previous one
// only when the WAL history since the last captured frame is provably
// intact, which one of two checks shows:
//   - checkCapturedFrame: the WAL is still the generation of that frame, and
//     the frame is still there unchanged (frames are only ever appended to
//     a generation), or
//   - checkWitnessedRestart: the WAL restarted once, in a checkpoint of this
//     process that proved the old generation ended at that frame.
//
// Anything else (a restart by another connection, the WAL truncated or
// replaced, an L0 file fetched from the replica) means frames may have gone
// by unseen, and the next file is a full snapshot; the failed check's reason
// says why.
func (db *DB) verify(ctx context.Context, pos ltx.Pos) (syncInfo, error) {
	info := syncInfo{offset: WALHeaderSize, snapshotting: true}
	if pos.TXID == 0 {
		return info, nil
	}
	last, err := db.capturedAt(pos)
	if err != nil {
		return info, err
	}
	info.prevCommit = last.commit
	if minTXID, _, err := ltx.ParseFilename(filepath.Base(last.path)); err == nil && minTXID < pos.TXID {
		db.fetchedCopy = last.path // this process writes L0 files of one TXID
	}

	wal, err := openWALView(db.WALPath())
	if err != nil {
		return info, err
	}
	defer func() { _ = wal.f.Close() }()

	var reason string
	if last.end == 0 {
		reason = "newest L0 file is a compacted file fetched from the replica"
	} else if wal.isGeneration(last.salts) {
		if reason, err = db.checkCapturedFrame(wal, pos, last); err != nil {
			return info, err
		} else if reason == "" {
			info.offset, info.salt1, info.salt2 = last.end, last.salts[0], last.salts[1]
			info.snapshotting = false
			return info, nil
		}
	} else if reason = db.checkWitnessedRestart(wal, last); reason == "" {
		// The new generation holds every commit since.
		db.truncatePassiveFailed = false
		info.salt1, info.salt2 = db.witness.next[0], db.witness.next[1]
		info.snapshotting = false
		return info, nil
	}
	info.reason = reason
	db.truncatePassiveFailed = false
	return info, nil
}

// walView is the WAL as verify reads it: the open file, its size and the
// salts of its header.
type walView struct {
	f     *os.File
	size  int64
	salts [2]uint32
}

func openWALView(path string) (walView, error) {
	f, err := os.Open(path)
	if err != nil {
		return walView{}, fmt.Errorf("open wal: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return walView{}, fmt.Errorf("stat wal: %w", err)
	}
	salts, err := readWALHeaderSalts(f)
	if err != nil {
		_ = f.Close()
		return walView{}, err
	}
	return walView{f: f, size: fi.Size(), salts: salts}, nil
}

// isGeneration reports whether the WAL has a header with these salts.
func (w walView) isGeneration(salts [2]uint32) bool {
	return w.size >= WALHeaderSize && w.salts == salts
}

// checkCapturedFrame checks, within the generation of the last captured
// frame, that the WAL still reaches past that frame and that the frame is
// the one captured. It returns "" when so, or why not.
func (db *DB) checkCapturedFrame(wal walView, pos ltx.Pos, last capture) (reason string, err error) {
	if last.end > wal.size {
		return "wal shorter than the frames already captured", nil
	}
	if last.end > WALHeaderSize {
		ok, err := db.lastPageMatches(wal.f, last.path, pos.TXID, last.end-db.frameSize(), last.salts)
		if err != nil {
			return "", err
		} else if !ok {
			return "last captured wal frame changed, wal overwritten by another process", nil
		}
	}
	return "", nil
}

// checkWitnessedRestart checks that the WAL left the generation of the last
// captured frame only by the restart this process witnessed (restartWitness)
// at that frame, and is empty or the generation that followed. It returns ""
// when so, or why not.
func (db *DB) checkWitnessedRestart(wal walView, last capture) (reason string) {
	w := db.witness
	if w != nil && w.salts == last.salts && w.end == last.end &&
		(wal.size < WALHeaderSize || wal.salts == w.next) {
		return ""
	}
	return "wal restarted since the last captured frame"
}

func (db *DB) frameSize() int64 { return int64(db.pageSize) + WALFrameHeaderSize }

// lastPageMatches reports whether the WAL frame at offset, the last one the
// newest L0 captured, still holds that L0's salts and page bytes.
func (db *DB) lastPageMatches(walFile *os.File, ltxPath string, txid ltx.TXID, offset int64, salts [2]uint32) (bool, error) {
	frame := make([]byte, WALFrameHeaderSize+db.pageSize)
	if n, err := walFile.ReadAt(frame, offset); n < len(frame) {
		if err == io.EOF {
			return false, nil
		}
		return false, fmt.Errorf("read wal frame at %d: %w", offset, err)
	}
	if binary.BigEndian.Uint32(frame[8:]) != salts[0] || binary.BigEndian.Uint32(frame[12:]) != salts[1] {
		return false, nil
	}

	// The header of the frame captured there, when known, decides: its
	// cumulative checksum covers the whole generation up to it.
	if db.lastFrame.txid == txid && db.lastFrame.offset == offset {
		return bytes.Equal(db.lastFrame.hdr[:], frame[:WALFrameHeaderSize]), nil
	}

	pgno := binary.BigEndian.Uint32(frame[0:])
	data, err := readLTXPage(ltxPath, pgno)
	if err != nil {
		return false, NewLTXError("decode", ltxPath, 0, uint64(txid), uint64(txid), fmt.Errorf("%w: %w", ErrLTXCorrupted, err))
	}
	return data != nil && bytes.Equal(data, frame[WALFrameHeaderSize:]), nil
}

// checkWALUnchanged fails when the WAL restarted while its frames were being
// copied: SQLite writes a new generation's header before its frames, so an
// unchanged header means every frame read was the one the page map found.
func checkWALUnchanged(walFile io.ReaderAt, rd *WALReader, end int64) error {
	if rd == nil || end == 0 {
		return nil
	}
	salts, err := readWALHeaderSalts(walFile)
	if err != nil {
		return err
	}
	if salts != [2]uint32{rd.salt1, rd.salt2} {
		return errWALRestartedDuringRead
	}
	return nil
}

// errWALRestartedDuringRead discards an L0 file whose frames may have been
// overwritten as they were read; the next sync starts over from verify.
var errWALRestartedDuringRead = errors.New("wal restarted while its frames were read")
