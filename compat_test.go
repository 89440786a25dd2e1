// Tests that behaviour programs and operators rely on matches upstream's:
// error words people grep logs for, zero values, settings set as fields.
package litestream_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// failWriteClient fails every WriteLTXFile after reading a little of it.
type failWriteClient struct{ litestream.ReplicaClient }

func (c *failWriteClient) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	_, _ = io.ReadFull(r, make([]byte, 100))
	return nil, errors.New("bucket on fire")
}

// touchLTX names a file at a level; listings read only names.
func touchLTX(t testing.TB, c *file.ReplicaClient, level int, minTXID, maxTXID ltx.TXID) {
	t.Helper()
	path := c.LTXFilePath(level, minTXID, maxTXID)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Upstream's words: a compaction whose write fails says "write ltx file",
// contiguity problems say "gap" or "overlap".
func TestCompactor_ErrorTexts(t *testing.T) {
	ctx := context.Background()
	t.Run("WriteFailed", func(t *testing.T) {
		dir := t.TempDir()
		writeTestLTX(t, dir, 0, 1, 1, []uint32{1})
		writeTestLTX(t, dir, 0, 2, 1, []uint32{1})
		c := &failWriteClient{file.NewReplicaClient(dir)}
		_, err := litestream.NewCompactor(c, nil).Compact(ctx, 1)
		if err == nil || !strings.HasPrefix(err.Error(), "write ltx file") || !strings.Contains(err.Error(), "bucket on fire") {
			t.Fatalf("err = %v, want it to start with \"write ltx file\"", err)
		}
	})
	t.Run("MergeGap", func(t *testing.T) {
		dir := t.TempDir()
		writeTestLTX(t, dir, 0, 1, 1, []uint32{1})
		writeTestLTX(t, dir, 0, 3, 1, []uint32{1})
		_, err := litestream.NewCompactor(file.NewReplicaClient(dir), nil).Compact(ctx, 1)
		if err == nil || !strings.HasPrefix(err.Error(), "write ltx file") || !strings.Contains(err.Error(), "gap") {
			t.Fatalf("err = %v, want a write ltx file error naming a gap", err)
		}
	})
	for _, tt := range []struct {
		name  string
		files [][2]ltx.TXID
		want  string
	}{
		{"VerifyGap", [][2]ltx.TXID{{1, 2}, {4, 5}}, "TXID gap detected"},
		{"VerifyOverlap", [][2]ltx.TXID{{1, 3}, {3, 5}}, "TXID overlap detected"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := file.NewReplicaClient(t.TempDir())
			for _, f := range tt.files {
				touchLTX(t, c, 1, f[0], f[1])
			}
			err := litestream.NewCompactor(c, nil).VerifyLevelConsistency(ctx, 1)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("RestoreGap", func(t *testing.T) {
		dir := t.TempDir()
		writeTestLTX(t, dir, 0, 1, 1, []uint32{1})
		writeTestLTX(t, dir, 0, 3, 1, []uint32{1})
		_, err := litestream.CalcRestorePlan(ctx, file.NewReplicaClient(dir), 0, time.Time{}, nil)
		if err == nil || !strings.Contains(err.Error(), "non-contiguous ltx files: have up to") || !strings.Contains(err.Error(), "gap") {
			t.Fatalf("err = %v, want upstream's text naming a gap", err)
		}
	})
}
