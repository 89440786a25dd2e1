// Raw access to a replica's objects, bypassing the ReplicaClient, for the
// conformance suite's layout checks.

package clienttest

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

// RawObject is one object of a replica as the service stores it, read
// without the ReplicaClient.
type RawObject struct {
	// Key is the object's name relative to the client's path, "/"-separated.
	Key string
	// Open returns the object's content.
	Open func() (io.ReadCloser, error)
}

// ListRawFunc lists every object under a client's path (the path given to
// NewClientFunc) with the service's own SDK or the server's storage.
type ListRawFunc func(t testing.TB, path string) []RawObject

// RawLayout is how a backend names LTX files under its path.
type RawLayout int

const (
	// LayoutLevelDir is ltx/<level decimal>/<min>-<max>.ltx, the file
	// backend's layout (file, gs, abs, sftp, nats, webdav).
	LayoutLevelDir RawLayout = iota
	// LayoutHexLevel is <level as %04x>/<min>-<max>.ltx (s3, oss).
	LayoutHexLevel
)

// key is the name of an LTX file under a client's path in the layout.
func (l RawLayout) key(level int, minTXID, maxTXID ltx.TXID) string {
	if l == LayoutHexLevel {
		return fmt.Sprintf("%04x/%s", level, ltx.FormatFilename(minTXID, maxTXID))
	}
	return fmt.Sprintf("ltx/%d/%s", level, ltx.FormatFilename(minTXID, maxTXID))
}

// fileKey translates a raw key in the given layout to the file backend's
// relative path, ltx/<level>/<name>.
func (l RawLayout) fileKey(key string) (level int, name string, err error) {
	parts := strings.Split(key, "/")
	var levelStr string
	switch {
	case l == LayoutLevelDir && len(parts) == 3 && parts[0] == "ltx":
		levelStr, name = parts[1], parts[2]
		level, err = strconv.Atoi(levelStr)
	case l == LayoutHexLevel && len(parts) == 2 && len(parts[0]) == 4:
		levelStr, name = parts[0], parts[1]
		var v uint64
		v, err = strconv.ParseUint(levelStr, 16, 16)
		level = int(v)
	default:
		return 0, "", fmt.Errorf("key %q does not match the layout", key)
	}
	if err != nil {
		return 0, "", fmt.Errorf("key %q: level %q: %w", key, levelStr, err)
	}
	if _, _, err := ltx.ParseFilename(name); err != nil {
		return 0, "", fmt.Errorf("key %q: %w", key, err)
	}
	return level, name, nil
}

// testRawCopy copies a replica object by object into a file replica,
// checks it holds the same files per level as the client lists, and checks
// a restore from it equals the source database.
func testRawCopy(t *testing.T, client litestream.ReplicaClient, objects []RawObject, layout RawLayout, srcPath string) {
	ctx := context.Background()
	root := t.TempDir()
	copied := map[int][]string{}
	for _, obj := range objects {
		level, name, err := layout.fileKey(obj.Key)
		if err != nil {
			t.Fatal(err)
		}
		mustCopyObject(t, obj, filepath.Join(root, "ltx", strconv.Itoa(level), name))
		copied[level] = append(copied[level], name)
	}

	for level := 0; level <= litestream.SnapshotLevel; level++ {
		var want []string
		for _, info := range MustList(t, client, level, 0, false) {
			want = append(want, ltx.FormatFilename(info.MinTXID, info.MaxTXID))
		}
		got := copied[level]
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("level %d: raw objects %v, client lists %v", level, got, want)
		}
	}
	if len(copied[0]) == 0 || len(copied[litestream.SnapshotLevel]) == 0 {
		t.Fatalf("raw copy has %d L0 and %d snapshot files, want some of each", len(copied[0]), len(copied[litestream.SnapshotLevel]))
	}

	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
	opt.IntegrityCheck = litestream.IntegrityCheckFull
	if err := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(root)).Restore(ctx, opt); err != nil {
		t.Fatalf("restore from the raw copy: %v", err)
	}
	if got, want := mustDumpRows(t, opt.OutputPath), mustDumpRows(t, srcPath); got != want {
		t.Fatalf("restored rows differ from the source:\n got %s\nwant %s", got, want)
	}
}

func mustCopyObject(t testing.TB, obj RawObject, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	rc, err := obj.Open()
	if err != nil {
		t.Fatalf("open raw %s: %v", obj.Key, err)
	}
	defer func() { _ = rc.Close() }()
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		_ = f.Close()
		t.Fatalf("copy raw %s: %v", obj.Key, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// mustDumpRows returns the round trip table's rows as text.
func mustDumpRows(t testing.TB, dbPath string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var dump string
	if err := db.QueryRow(`SELECT count(*) || ':' || group_concat(id || '=' || v, ',') FROM (SELECT id, v FROM t ORDER BY id)`).Scan(&dump); err != nil {
		t.Fatalf("dump %s: %v", dbPath, err)
	}
	return dump
}
