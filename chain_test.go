// Tests of the chain check between LTX files.
package litestream

import (
	"errors"
	"testing"

	"github.com/superfly/ltx"
)

func TestChainLink(t *testing.T) {
	l0 := func(txid ltx.TXID, off, size int64, salt uint32, commit uint32) ltx.Header {
		return ltx.Header{PageSize: 4096, MinTXID: txid, MaxTXID: txid, Commit: commit, WALOffset: off, WALSize: size, WALSalt1: salt, WALSalt2: salt}
	}
	prev := chainLink{level: 0, hdr: l0(8, 4152, 8240, 7, 10)}
	for _, tc := range []struct {
		name  string
		prev  chainLink
		level int
		hdr   ltx.Header
		ok    bool
	}{
		{"Continues", prev, 0, l0(9, 12392, 4120, 7, 10), true},
		{"FreshWAL", prev, 0, l0(9, WALHeaderSize, 4120, 9, 10), true},
		{"Gap", prev, 0, l0(9, 16512, 4120, 7, 10), false},
		{"OtherSalts", prev, 0, l0(9, 12392, 4120, 9, 10), false},
		{"NotNext", prev, 0, l0(10, 16512, 4120, 9, 10), true},
		{"Compacted", chainLink{level: 1, hdr: ltx.Header{MinTXID: 1, MaxTXID: 8, Commit: 10}}, 0, l0(9, 16512, 4120, 9, 10), true},
		{"IntoL1", prev, 1, l0(9, 16512, 4120, 9, 10), true},
		{"NothingBefore", chainLink{}, 0, l0(9, 16512, 4120, 9, 10), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.prev.continues(tc.level, tc.hdr)
			if (err == nil) != tc.ok {
				t.Fatalf("continues = %v, want ok=%v", err, tc.ok)
			} else if err != nil && !errors.Is(err, ErrLTXCorrupted) {
				t.Fatalf("err = %v, want ErrLTXCorrupted", err)
			}
		})
	}
}

func TestChainLink_Growth(t *testing.T) {
	const pageSize = 4096
	lock := ltx.LockPgno(pageSize)
	prev := chainLink{level: 0, hdr: ltx.Header{PageSize: pageSize, MinTXID: 8, MaxTXID: 8, Commit: lock - 2}}
	next := ltx.Header{PageSize: pageSize, MinTXID: 9, MaxTXID: 9, Commit: lock + 1}
	for _, tc := range []struct {
		name  string
		hdr   ltx.Header
		pages []uint32
		ok    bool
	}{
		// The lock page is never in a file.
		{"AllNewPages", next, []uint32{1, lock - 1, lock + 1}, true},
		{"MissingPage", next, []uint32{1, lock + 1}, false},
		{"Shrinks", ltx.Header{PageSize: pageSize, MinTXID: 9, MaxTXID: 9, Commit: 3}, []uint32{2}, true},
		{"SameSize", ltx.Header{PageSize: pageSize, MinTXID: 9, MaxTXID: 9, Commit: lock - 2}, []uint32{2}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := prev.growth(tc.hdr)
			for _, pgno := range tc.pages {
				g.page(pgno)
			}
			if err := g.err(); (err == nil) != tc.ok {
				t.Fatalf("growth = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
