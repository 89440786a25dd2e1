// Tests of PageIterator.
package internal_test

import (
	"errors"
	"testing"

	"github.com/benbjohnson/litestream/internal"
	"github.com/superfly/ltx"
)

func TestPageIterator(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		pages := [][]*ltx.FileInfo{{{MinTXID: 1}, {MinTXID: 2}}, {}, {{MinTXID: 3}}}
		var calls int
		itr := internal.NewPageIterator(func() ([]*ltx.FileInfo, bool, error) {
			calls++
			return pages[calls-1], calls < len(pages), nil
		})
		a, err := ltx.SliceFileIterator(itr)
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != 3 || a[0].MinTXID != 1 || a[2].MinTXID != 3 {
			t.Fatalf("got %d items", len(a))
		}
		if itr.Next() || calls != 3 {
			t.Fatalf("Next after the end fetched again: %d calls", calls)
		}
	})
	t.Run("ErrFetch", func(t *testing.T) {
		want := errors.New("boom")
		var calls int
		itr := internal.NewPageIterator(func() ([]*ltx.FileInfo, bool, error) {
			calls++
			return nil, true, want
		})
		if itr.Next() || itr.Next() {
			t.Fatal("Next succeeded after a failed fetch")
		}
		if !errors.Is(itr.Err(), want) || !errors.Is(itr.Close(), want) || calls != 1 {
			t.Fatalf("err = %v, calls = %d", itr.Err(), calls)
		}
	})
}
