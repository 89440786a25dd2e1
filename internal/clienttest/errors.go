// The error rule every backend follows (internal/backend): an error starts
// with the client's Type() name, and a failure on one LTX file is a
// *litestream.LTXError naming its level and TXIDs, with the cause kept for
// errors.Is.

package clienttest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

func testErrors(t *testing.T, c litestream.ReplicaClient) {
	ctx := context.Background()
	t.Run("OpenMissing", func(t *testing.T) {
		rc, err := c.OpenLTXFile(ctx, 2, 7, 9, 0, 0)
		if err == nil {
			_, err = io.ReadAll(rc)
			_ = rc.Close()
		}
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v, want os.ErrNotExist", err)
		}
		checkLTXError(t, c, err, "open", 2, 7, 9)
	})
	t.Run("WriteNotLTX", func(t *testing.T) {
		_, err := c.WriteLTXFile(ctx, 1, 5, 6, bytes.NewReader([]byte("not an ltx file")))
		if err == nil {
			t.Fatal("write of a file without an LTX header: no error")
		}
		checkLTXError(t, c, err, "write", 1, 5, 6)
		itr, err := c.LTXFiles(ctx, 1, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = itr.Close() }()
		if itr.Next() {
			t.Fatalf("failed write stored %+v", itr.Item())
		}
	})
}

// checkLTXError fails t unless err starts with "<type>: " and holds an
// LTXError of op on the given file.
func checkLTXError(t *testing.T, c litestream.ReplicaClient, err error, op string, level int, minTXID, maxTXID ltx.TXID) {
	t.Helper()
	if prefix := c.Type() + ": "; !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("error %q does not start with %q", err, prefix)
	}
	var e *litestream.LTXError
	if !errors.As(err, &e) {
		t.Fatalf("error %q holds no *litestream.LTXError", err)
	}
	if e.Op != op || e.Level != level || ltx.TXID(e.MinTXID) != minTXID || ltx.TXID(e.MaxTXID) != maxTXID {
		t.Errorf("LTXError = %s L%d %s-%s, want %s L%d %s-%s", e.Op, e.Level, ltx.TXID(e.MinTXID), ltx.TXID(e.MaxTXID), op, level, minTXID, maxTXID)
	}
	if !strings.HasSuffix(e.Path, ltx.FormatFilename(minTXID, maxTXID)) {
		t.Errorf("LTXError path %q does not name the file %s", e.Path, ltx.FormatFilename(minTXID, maxTXID))
	}
}
