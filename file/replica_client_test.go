// Tests of the file client.
package file_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/superfly/ltx"
)

func TestReplicaClient_Conformance(t *testing.T) {
	root := t.TempDir()
	clienttest.Run(t, func(t testing.TB, path string) litestream.ReplicaClient {
		return file.NewReplicaClient(filepath.Join(root, path))
	}, clienttest.Options{ListRaw: func(t testing.TB, path string) []clienttest.RawObject {
		return clienttest.MustListDir(t, filepath.Join(root, path))
	}})
}

// A write removes the temporary files that dead writers left in its level
// directory (a SIGKILL between create and rename), but not recent ones
// another writer may still be writing, nor files that are not temporary
// uploads; listings never return any of them.
func TestReplicaClient_WriteLTXFile_RemovesStaleTemps(t *testing.T) {
	ctx := context.Background()
	c := file.NewReplicaClient(t.TempDir())
	dir := c.LTXLevelDir(1)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, ltx.FormatFilename(1, 2)+".123456.tmp")
	fresh := filepath.Join(dir, ltx.FormatFilename(3, 4)+".654321.tmp")
	other := filepath.Join(dir, "notes.tmp")
	for _, name := range []string{stale, fresh, other} {
		if err := os.WriteFile(name, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-internal.StaleTempAge - time.Minute)
	for _, name := range []string{stale, other} {
		if err := os.Chtimes(name, old, old); err != nil {
			t.Fatal(err)
		}
	}

	b := clienttest.MustLTX(t, 4096, 5, 5, 1, time.Now())
	if _, err := c.WriteLTXFile(ctx, 1, 5, 5, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale temporary %s still there (stat: %v)", filepath.Base(stale), err)
	}
	for _, name := range []string{fresh, other} {
		if _, err := os.Stat(name); err != nil {
			t.Fatalf("%s removed: %v", filepath.Base(name), err)
		}
	}
	itr, err := c.LTXFiles(ctx, 1, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := ltx.SliceFileIterator(itr)
	if err != nil {
		t.Fatal(err)
	} else if len(infos) != 1 || infos[0].MinTXID != 5 {
		t.Fatalf("listing %+v, want only 5-5", infos)
	}
}
