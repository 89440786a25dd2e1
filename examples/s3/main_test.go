// Test that runs the S3 example against MinIO.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/superfly/ltx"

	"github.com/benbjohnson/litestream/internal/testserver"
)

// exampleEnv is one S3 location for the example program.
type exampleEnv struct {
	bin, dbPath string
	env         []string
	raw         *awss3.Client
	bucket      string
	prefix      string
}

// Run the example against MinIO, stop it, delete the local database and run
// it again: it restores every row and replication continues with the next
// TXID. A second prefix starts empty and gives a fresh database.
func TestS3Example(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "s3example")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	endpoint, ak, sk := testserver.StartMinIO(t)
	raw := awss3.New(awss3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(ak, sk, ""),
	})
	const bucket = "example"
	if _, err := raw.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	newEnv := func(prefix string) *exampleEnv {
		return &exampleEnv{
			bin: bin, dbPath: filepath.Join(dir, prefix, "app.db"), raw: raw, bucket: bucket, prefix: prefix,
			env: []string{
				"LITESTREAM_BUCKET=" + bucket, "LITESTREAM_PATH=" + prefix, "AWS_REGION=us-east-1",
				"AWS_ACCESS_KEY_ID=" + ak, "AWS_SECRET_ACCESS_KEY=" + sk, "LITESTREAM_S3_ENDPOINT=" + endpoint,
			},
		}
	}

	t.Run("RestoreAndContinue", func(t *testing.T) {
		e := newEnv("app")
		start1, rows1 := e.MustRun(t, 5)
		if start1 != 0 {
			t.Fatalf("first run started with %d rows, want 0", start1)
		}
		max1 := e.MustDenseL0(t)
		files1 := e.mustListL0(t)

		e.MustRemoveLocal(t)
		start2, rows2 := e.MustRun(t, 5)
		if last := rows1[len(rows1)-1]; start2 < last {
			t.Fatalf("second run restored %d rows, first run wrote up to row %d", start2, last)
		}
		if rows2[0] != start2+1 {
			t.Fatalf("second run's first row is %d after restoring %d rows", rows2[0], start2)
		}
		e.MustHaveRows(t, rows2[len(rows2)-1], append(rows1, rows2...))
		if max2 := e.MustDenseL0(t); max2 <= max1 {
			t.Fatalf("max L0 TXID after second run %s, want > %s", max2, max1)
		}
		// No TXID reused: the first run's files are still there, unchanged.
		files2 := e.mustListL0(t)
		for i, f := range files1 {
			if files2[i] != f {
				t.Fatalf("L0 file %s (etag %s) after the first run became %s (etag %s)", f.name, f.etag, files2[i].name, files2[i].etag)
			}
		}
	})

	t.Run("EmptyReplica", func(t *testing.T) {
		e := newEnv("fresh")
		start, rows := e.MustRun(t, 2)
		if start != 0 || rows[0] != 1 {
			t.Fatalf("fresh run started with %d rows, first row %d; want 0 and 1", start, rows[0])
		}
		e.MustDenseL0(t)
	})
}

// MustRun starts the example, waits for n rows and for a new L0 file in the
// bucket (the database is replicating), stops it with SIGINT and returns the
// row count it started with and the row IDs it printed.
func (e *exampleEnv) MustRun(t *testing.T, n int) (start int64, rows []int64) {
	t.Helper()
	cmd := exec.Command(e.bin, "-db", e.dbPath, "-interval", "100ms")
	cmd.Env = append(os.Environ(), e.env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l0N := len(e.mustListL0(t))
	start = -1
	stopping := false
	scanner := bufio.NewScanner(stdout)
	for scanner.Scan() {
		f := strings.Fields(scanner.Text())
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatalf("unexpected output %q", scanner.Text())
		}
		switch f[0] {
		case "rows":
			start = v
		case "row":
			rows = append(rows, v)
			if !stopping && len(rows) >= n && len(e.mustListL0(t)) > l0N {
				if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
				stopping = true
			} else if !stopping && len(rows) > n+600 {
				_ = cmd.Process.Kill()
				t.Fatalf("no new L0 file in the bucket after %d rows", len(rows))
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("example exited with %v\n%s", err, stderr.String())
	}
	if start < 0 || len(rows) < n {
		t.Fatalf("example printed rows=%d and %d row IDs, want %d\n%s", start, len(rows), n, stderr.String())
	}
	return start, rows
}

// MustRemoveLocal deletes the database, its WAL and shared memory files and
// the litestream meta directory.
func (e *exampleEnv) MustRemoveLocal(t *testing.T) {
	t.Helper()
	dir, base := filepath.Split(e.dbPath)
	for _, p := range []string{e.dbPath, e.dbPath + "-wal", e.dbPath + "-shm", filepath.Join(dir, "."+base+"-litestream")} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	} else if len(entries) != 0 {
		t.Fatalf("local files left after removal: %v", entries)
	}
}

// MustHaveRows checks the local database holds the rows 1..n (n+1 if SIGINT
// interrupted an insert after it committed) and every printed ID.
func (e *exampleEnv) MustHaveRows(t *testing.T, n int64, printed []int64) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var count, maxID int64
	if err := db.QueryRow(`SELECT count(*), coalesce(max(id), 0) FROM ticks`).Scan(&count, &maxID); err != nil {
		t.Fatal(err)
	}
	// One more row than printed is the insert SIGINT interrupted: committed,
	// but its ExecContext returned the canceled context, so no "row" line.
	if maxID != count || (count != n && count != n+1) {
		t.Fatalf("database has %d rows up to id %d, want %d (or %d, the row being written at SIGINT)", count, maxID, n, n+1)
	}
	for _, id := range printed {
		if id < 1 || id > n {
			t.Fatalf("printed row %d is not in the database", id)
		}
	}
}

// MustDenseL0 lists the L0 keys in the bucket and checks they cover
// TXIDs 1..max without gap or overlap; it returns max.
func (e *exampleEnv) MustDenseL0(t *testing.T) ltx.TXID {
	t.Helper()
	files := e.mustListL0(t)
	var next ltx.TXID = 1
	for _, f := range files {
		minTXID, maxTXID, err := ltx.ParseFilename(f.name)
		if err != nil {
			t.Fatalf("L0 file %s: %v", f.name, err)
		} else if minTXID != next {
			t.Fatalf("L0 file %s: want min TXID %s (files %v)", f.name, next, files)
		}
		next = maxTXID + 1
	}
	if next == 1 {
		t.Fatalf("no L0 files under %s", e.prefix)
	}
	return next - 1
}

// l0Object is an L0 file in the bucket.
type l0Object struct{ name, etag string }

// mustListL0 returns the L0 files in the bucket, in key order.
func (e *exampleEnv) mustListL0(t *testing.T) []l0Object {
	t.Helper()
	var files []l0Object
	p := awss3.NewListObjectsV2Paginator(e.raw, &awss3.ListObjectsV2Input{Bucket: aws.String(e.bucket), Prefix: aws.String(e.prefix + "/0000/")})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range page.Contents {
			files = append(files, l0Object{path.Base(aws.ToString(obj.Key)), aws.ToString(obj.ETag)})
		}
	}
	return files
}
