// Tests of restoring replicas written by upstream.
package litestream_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

type fixturePoint struct {
	TXID   string `json:"txid"`
	Rows   int    `json:"rows"`
	Sum    int64  `json:"sum"`
	SHA256 string `json:"restored_sha256"`
}

// Replicas written by upstream must restore byte-for-byte at every TXID.
func TestReplica_Restore_UpstreamFixtures(t *testing.T) {
	for _, name := range []string{"upstream-1024", "upstream-4096", "upstream-65536"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "upstream", name)
			var points []fixturePoint
			b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
			if err != nil {
				t.Fatal(err)
			} else if err := json.Unmarshal(b, &points); err != nil {
				t.Fatal(err)
			}
			if len(points) != 16 {
				t.Fatalf("expected.json has %d points, want 16", len(points))
			}

			r := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(filepath.Join(dir, "replica")))
			for _, p := range points {
				txid, err := ltx.ParseTXID(p.TXID)
				if err != nil {
					t.Fatal(err)
				}
				opt := litestream.NewRestoreOptions()
				opt.OutputPath = filepath.Join(t.TempDir(), "db")
				opt.TXID = txid
				opt.IntegrityCheck = litestream.IntegrityCheckFull
				if err := r.Restore(context.Background(), opt); err != nil {
					t.Fatalf("restore txid %s: %v", txid, err)
				}
				MustMatchFixture(t, opt.OutputPath, p)
			}

			// Latest equals the last point.
			opt := litestream.NewRestoreOptions()
			opt.OutputPath = filepath.Join(t.TempDir(), "db")
			if err := r.Restore(context.Background(), opt); err != nil {
				t.Fatalf("restore latest: %v", err)
			}
			MustMatchFixture(t, opt.OutputPath, points[len(points)-1])
		})
	}
}

func MustMatchFixture(t testing.TB, path string, p fixturePoint) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != p.SHA256 {
		t.Fatalf("txid %s: sha256 = %s, want %s", p.TXID, got, p.SHA256)
	}

	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var rows int
	var total sql.NullInt64
	if err := db.QueryRow(`SELECT count(*), sum(v) FROM t`).Scan(&rows, &total); err != nil {
		t.Fatalf("txid %s: query: %v", p.TXID, err)
	}
	if rows != p.Rows || total.Int64 != p.Sum {
		t.Fatalf("txid %s: rows=%d sum=%d, want rows=%d sum=%d", p.TXID, rows, total.Int64, p.Rows, p.Sum)
	}
}
