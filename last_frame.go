// The header of the last WAL frame captured into an L0 file. Its cumulative
// checksum covers every frame of the WAL generation up to it, so finding the
// same header at the same offset proves the WAL history since the capture is
// intact; comparing that frame's page alone does not (an older copy of the
// database and WAL restored over them can end in the same page). It is kept
// in memory and in a small file in the LTX directory, so a new process has
// the proof too.

package litestream

import (
	"encoding/binary"
	"os"
	"path/filepath"

	"github.com/superfly/ltx"
)

// lastFrame identifies the last WAL frame captured into L0 file txid.
type lastFrame struct {
	txid   ltx.TXID
	offset int64
	hdr    [WALFrameHeaderSize]byte
}

// lastFrameFileName is the record's file in the LTX directory, which
// ResetLocalState removes with the L0 files the record belongs to.
const lastFrameFileName = "last-frame"

// lastFrameRecordSize: magic, TXID, offset, frame header, CRC-32C.
const lastFrameRecordSize = 4 + 8 + 8 + WALFrameHeaderSize + 4

var lastFrameMagic = [4]byte{'L', 'S', 'L', 'F'}

func (db *DB) lastFramePath() string { return filepath.Join(db.LTXDir(), lastFrameFileName) }

// rememberLastFrame records the header of the frame at offset, the last one
// L0 file txid captured. The record is written in place without fsync: one
// lost or torn by a crash is detected and only costs the stronger proof.
// Caller holds exec.
func (db *DB) rememberLastFrame(walFile *os.File, txid ltx.TXID, offset int64) {
	lf := lastFrame{txid: txid, offset: offset}
	if n, _ := walFile.ReadAt(lf.hdr[:], offset); n != len(lf.hdr) {
		return
	}
	db.lastFrame = lf

	var rec [lastFrameRecordSize]byte
	copy(rec[0:], lastFrameMagic[:])
	binary.BigEndian.PutUint64(rec[4:], uint64(lf.txid))
	binary.BigEndian.PutUint64(rec[12:], uint64(lf.offset))
	copy(rec[20:], lf.hdr[:])
	sealRecord(rec[:])
	f, err := os.OpenFile(db.lastFramePath(), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }()
	_, _ = f.WriteAt(rec[:], 0)
}

// loadLastFrame reads the record a previous process left; a missing, torn
// or foreign record leaves no last frame, and verify compares pages.
func (db *DB) loadLastFrame() lastFrame {
	rec, err := os.ReadFile(db.lastFramePath())
	if err != nil || !sealedRecord(rec, lastFrameRecordSize) || [4]byte(rec[0:4]) != lastFrameMagic {
		return lastFrame{}
	}
	lf := lastFrame{txid: ltx.TXID(binary.BigEndian.Uint64(rec[4:])), offset: int64(binary.BigEndian.Uint64(rec[12:]))}
	copy(lf.hdr[:], rec[20:44])
	return lf
}
