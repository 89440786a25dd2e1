// An ltx.FileIterator over listings fetched a page at a time.

package internal

import "github.com/superfly/ltx"

// PageIterator is an ltx.FileIterator over a listing fetched one page at a
// time, as object stores list. fetch returns the next page and whether more
// pages follow; it is not called again after an error or a last page.
type PageIterator struct {
	fetch  func() (page []*ltx.FileInfo, more bool, err error)
	more   bool
	page   []*ltx.FileInfo
	item   *ltx.FileInfo
	err    error
	closed bool
}

// NewPageIterator returns an iterator that fetches its first page lazily.
func NewPageIterator(fetch func() (page []*ltx.FileInfo, more bool, err error)) *PageIterator {
	return &PageIterator{fetch: fetch, more: true}
}

// Next advances to the next file, fetching pages as needed.
func (itr *PageIterator) Next() bool {
	if itr.closed || itr.err != nil {
		return false
	}
	for len(itr.page) == 0 {
		if !itr.more {
			itr.item = nil
			return false
		}
		if itr.page, itr.more, itr.err = itr.fetch(); itr.err != nil {
			return false
		}
	}
	itr.item, itr.page = itr.page[0], itr.page[1:]
	return true
}

// Err returns the error that stopped the iteration.
func (itr *PageIterator) Err() error { return itr.err }

// Item returns the current file.
func (itr *PageIterator) Item() *ltx.FileInfo { return itr.item }

// Close ends the iteration and returns its error, if any.
func (itr *PageIterator) Close() error {
	itr.closed = true
	return itr.err
}
