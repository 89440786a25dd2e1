// The chain check between LTX files: each file applied or merged must have
// been written by the same database as the one before it.

package litestream

import (
	"fmt"

	"github.com/superfly/ltx"
)

// chainLink is the file applied or merged last, for checking that the next
// file was written by the same database. Replica files carry no checksum
// chain (NoChecksum, as upstream writes them), so two traces every writer
// leaves are checked instead:
//   - an L0 file that resumes a WAL part-way resumes exactly where the L0
//     file before it stopped, in the same WAL generation (same salts);
//   - a file that grows the database holds every new page, because writers
//     fill growth from the database file.
//
// A file of another database passes both only if it starts a fresh WAL and
// does not grow the database past the previous file's size.
type chainLink struct {
	level int
	hdr   ltx.Header // zero when nothing came before

	// unproven marks a follow output's link whose file the replica no
	// longer holds as the output got it: the replica may since hold another
	// database's history, which the checks above cannot tell.
	unproven bool

	// walOnly marks a follow output's link taken from the replica's L0
	// file at its TXID without comparing pages (the output may hold a
	// later commit): the file may be another numbering's at that TXID.
	walOnly bool
}

// walContinues reports an L0 file resuming the previous L0 file's WAL
// where it stopped, in the same WAL generation: its random salts tie it to
// the same database even when nothing else links the two.
func (prev chainLink) walContinues(level int, hdr ltx.Header) bool {
	return prev.precedes(hdr) && prev.level == 0 && level == 0 && hasWALRange(prev.hdr) && hdr.WALOffset != WALHeaderSize &&
		hdr.WALSalt1 == prev.hdr.WALSalt1 && hdr.WALSalt2 == prev.hdr.WALSalt2 && hdr.WALOffset == prev.hdr.WALOffset+prev.hdr.WALSize
}

// continues reports an L0 file whose WAL range cannot follow the previous
// L0 file's. Files of other levels carry no WAL range to compare.
func (prev chainLink) continues(level int, hdr ltx.Header) error {
	if !prev.precedes(hdr) || prev.level != 0 || level != 0 || !hasWALRange(prev.hdr) || !hasWALRange(hdr) {
		return nil
	}
	if hdr.WALOffset == WALHeaderSize {
		return nil // a fresh or restarted WAL: nothing to compare
	}
	end := prev.hdr.WALOffset + prev.hdr.WALSize
	if hdr.WALSalt1 == prev.hdr.WALSalt1 && hdr.WALSalt2 == prev.hdr.WALSalt2 && hdr.WALOffset == end {
		return nil
	}
	return &chainBrokenError{fmt.Errorf("%w: WAL range at offset %d (salts %08x/%08x) does not continue %s, which ends at offset %d (salts %08x/%08x): one of them belongs to another database",
		ErrLTXCorrupted, hdr.WALOffset, hdr.WALSalt1, hdr.WALSalt2, prev.path(), end, prev.hdr.WALSalt1, prev.hdr.WALSalt2)}
}

// chainBrokenError reports a file that cannot follow the one before it:
// the two were written by different databases, or by the same one with
// its TXIDs numbered again. It matches ErrLTXCorrupted.
type chainBrokenError struct{ err error }

func (e *chainBrokenError) Error() string { return e.err.Error() }
func (e *chainBrokenError) Unwrap() error { return e.err }

// growth returns the check of the pages hdr's file adds beyond the
// previous file's database size.
func (prev chainLink) growth(hdr ltx.Header) growthCheck {
	if !prev.precedes(hdr) || hdr.Commit <= prev.hdr.Commit {
		return growthCheck{}
	}
	g := growthCheck{prev: prev, from: prev.hdr.Commit, to: hdr.Commit, want: hdr.Commit - prev.hdr.Commit}
	if lock := hdr.LockPgno(); lock > g.from && lock <= g.to {
		g.want--
	}
	return g
}

func (prev chainLink) precedes(hdr ltx.Header) bool {
	return prev.hdr.MaxTXID != 0 && prev.hdr.MaxTXID+1 == hdr.MinTXID
}

// path names the previous file, or for a follow output whose last file is
// not known, the output's TXID.
func (prev chainLink) path() string {
	if prev.level < 0 {
		return fmt.Sprintf("the database at TXID %s", prev.hdr.MaxTXID)
	}
	return LTXFilePath("", prev.level, prev.hdr.MinTXID, prev.hdr.MaxTXID)
}

func hasWALRange(hdr ltx.Header) bool {
	return hdr.WALSalt1 != 0 || hdr.WALSalt2 != 0
}

// growthCheck counts a file's pages in (from, to]; pages arrive in
// ascending order, so the count says whether all of them are there.
type growthCheck struct {
	prev       chainLink
	from, to   uint32
	want, seen uint32
}

func (g *growthCheck) page(pgno uint32) {
	if pgno > g.from && pgno <= g.to {
		g.seen++
	}
}

func (g *growthCheck) err() error {
	if g.seen == g.want {
		return nil
	}
	return &chainBrokenError{fmt.Errorf("%w: grows the database from %d to %d pages after %s but holds %d of the %d new pages: a file of another database",
		ErrLTXCorrupted, g.from, g.to, g.prev.path(), g.seen, g.want)}
}
