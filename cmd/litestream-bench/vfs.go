// vfs.go: the VFS figures: open-to-first-row time and backend requests of a
// point lookup through the VFS against a full restore of the same replica
// (file backend and MinIO), and peak RSS while scanning the whole database
// under a 16 MB page cache.

package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal"
	"github.com/benbjohnson/litestream/internal/testserver"
	"github.com/benbjohnson/litestream/s3"
	"github.com/superfly/ltx"
)

// vfsResult is what the VFS children report besides peak RSS.
type vfsResult struct {
	FirstRow     time.Duration `json:"first_row"`
	Calls        int           `json:"calls"`
	Bytes        int64         `json:"bytes"`
	Restore      time.Duration `json:"restore"`
	RestoreCalls int           `json:"restore_calls"`
	RestoreBytes int64         `json:"restore_bytes"`
	Rows         int64         `json:"rows"`
}

// vfsCacheSize is the page cache of the scan figure.
const vfsCacheSize = 16 << 20

// benchVFS runs the VFS figures at the size nearest 1 GB.
func benchVFS(cfg config) ([]row, error) {
	size := cfg.sizes[0]
	for _, s := range cfg.sizes {
		if abs(s-(1<<30)) < abs(size-(1<<30)) {
			size = s
		}
	}
	name := fmtSize(size)
	dir := filepath.Join(cfg.dir, "vfs-"+name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path, replicaDir := filepath.Join(dir, "db"), filepath.Join(dir, "replica")
	fmt.Fprintf(os.Stderr, "   %s: generating and replicating\n", name)
	if err := genDB(path, size); err != nil {
		return nil, err
	}
	if _, err := runInChild("replicate", path, replicaDir); err != nil {
		return nil, err
	}
	_ = os.Remove(path)

	var rows []row
	point := func(backend string, args ...string) error {
		fmt.Fprintf(os.Stderr, "   %s: point lookup through the VFS, %s\n", name, backend)
		res, err := runInChild("vfs-point", args...)
		if err != nil {
			return err
		}
		v := res.VFS
		rows = append(rows,
			row{figure: fmt.Sprintf("vfs open to first row (point lookup), %s, %s", backend, name), budget: "< full restore", baseline: "restore " + v.Restore.Round(time.Millisecond).String(),
				measured: fmt.Sprintf("%s (%.4fx)", ms(v.FirstRow), float64(v.FirstRow)/float64(v.Restore)), pass: v.FirstRow < v.Restore},
			row{figure: fmt.Sprintf("vfs backend requests (point lookup), %s, %s", backend, name), budget: "< full restore", baseline: fmt.Sprintf("restore %d requests, %.1fMB", v.RestoreCalls, float64(v.RestoreBytes)/(1<<20)),
				measured: fmt.Sprintf("%d requests, %.1fKB", v.Calls, float64(v.Bytes)/(1<<10)), pass: v.Bytes < v.RestoreBytes},
		)
		return nil
	}
	if err := point("file", "file", replicaDir); err != nil {
		return rows, err
	}

	fmt.Fprintf(os.Stderr, "   %s: scan through the VFS under a %dMB cache\n", name, vfsCacheSize>>20)
	res, err := runInChild("vfs-scan", replicaDir)
	if err != nil {
		return rows, err
	}
	rows = append(rows, row{figure: fmt.Sprintf("vfs peak RSS scanning all rows, %dMB cache, %s", vfsCacheSize>>20, name), budget: "< 64MB",
		baseline: fmt.Sprintf("%d rows in %s", res.VFS.Rows, res.Duration.Round(time.Millisecond)), measured: fmt.Sprintf("%.1fMB", float64(res.PeakRSS)/(1<<20)), pass: res.PeakRSS < 64<<20})

	endpoint, stop, err := startMinIO(filepath.Join(dir, "minio"))
	if err != nil {
		return rows, fmt.Errorf("minio: %w", err)
	}
	defer stop()
	if err := copyToMinIO(replicaDir, endpoint); err != nil {
		return rows, fmt.Errorf("copy replica to minio: %w", err)
	}
	return rows, point("MinIO", "s3", endpoint)
}

// newBenchS3Client returns a client of the bench bucket on endpoint.
func newBenchS3Client(endpoint string) *s3.ReplicaClient {
	c := s3.NewReplicaClient()
	c.AccessKeyID, c.SecretAccessKey = testserver.MinIOAccessKey, testserver.MinIOSecretKey
	c.Bucket, c.Path = "vfs-bench", "db"
	c.Endpoint, c.ForcePathStyle = endpoint, true
	return c
}

// startMinIO runs the MinIO binary installed by make test-deps on a free
// loopback port until stop is called.
func startMinIO(dataDir string) (endpoint string, stop func(), err error) {
	bin := filepath.Join(testserver.BinDir(), "minio")
	addr, err := freeLoopbackAddr()
	if err != nil {
		return "", nil, err
	}
	console, err := freeLoopbackAddr()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "server", dataDir, "--quiet", "--address", addr, "--console-address", console)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+testserver.MinIOAccessKey, "MINIO_ROOT_PASSWORD="+testserver.MinIOSecretKey, "MINIO_BROWSER=off", "MINIO_UPDATE=off")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start %s (run make test-deps): %w", bin, err)
	}
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	endpoint = "http://" + addr
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := internal.ProbeHTTP(ctx, endpoint+"/minio/health/ready")
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("not ready after a minute: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	raw := awss3.New(awss3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(testserver.MinIOAccessKey, testserver.MinIOSecretKey, "")})
	if _, err := raw.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String("vfs-bench")}); err != nil {
		stop()
		return "", nil, fmt.Errorf("create bucket: %w", err)
	}
	return endpoint, stop, nil
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String(), nil
}

// copyToMinIO copies every LTX file of the file replica into the bucket.
func copyToMinIO(replicaDir, endpoint string) error {
	ctx := context.Background()
	src, dst := file.NewReplicaClient(replicaDir), newBenchS3Client(endpoint)
	if err := dst.Init(ctx); err != nil {
		return err
	}
	for level := 0; level <= litestream.SnapshotLevel; level++ {
		infos, err := litestream.FindLTXFiles(ctx, src, level, false, func(*ltx.FileInfo) (bool, error) { return true, nil })
		if err != nil {
			return err
		}
		for _, info := range infos {
			rc, err := src.OpenLTXFile(ctx, level, info.MinTXID, info.MaxTXID, 0, 0)
			if err != nil {
				return err
			}
			_, err = dst.WriteLTXFile(ctx, level, info.MinTXID, info.MaxTXID, rc)
			_ = rc.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// benchClient returns the counted client a VFS child reads. Args: "file",
// replica dir or "s3", endpoint.
func benchClient(args []string) (*countingClient, error) {
	var c litestream.ReplicaClient
	switch args[0] {
	case "file":
		c = file.NewReplicaClient(args[1])
	case "s3":
		c = newBenchS3Client(args[1])
	default:
		return nil, fmt.Errorf("unknown backend %q", args[0])
	}
	if err := c.Init(context.Background()); err != nil {
		return nil, err
	}
	return &countingClient{ReplicaClient: c}, nil
}

// childVFSPoint times sql.Open to the first row of a point lookup through
// a new VFS, counting backend requests, then a full restore of the same
// replica through another counted client.
func childVFSPoint(args []string) (res childResult, err error) {
	client, err := benchClient(args)
	if err != nil {
		return res, err
	}
	v := &vfsResult{}
	start := time.Now()
	vfs := litestream.NewVFS(client, nil)
	if err := vfs.Register(); err != nil {
		return res, err
	}
	db, err := sql.Open("sqlite", vfs.DSN("db"))
	if err != nil {
		return res, err
	}
	var n int
	if err := db.QueryRow(`SELECT length(v) FROM blobs WHERE id = 12345 % (SELECT max(id) FROM blobs) + 1`).Scan(&n); err != nil {
		return res, fmt.Errorf("point lookup: %w (cause: %v)", err, vfs.LastError())
	}
	v.FirstRow = time.Since(start)
	c := client.snapshot()
	v.Calls, v.Bytes = c.Calls, c.Bytes
	_ = db.Close()
	_ = vfs.Close()

	restoreClient, err := benchClient(args)
	if err != nil {
		return res, err
	}
	out, err := os.MkdirTemp("", "litestream-bench-vfs-")
	if err != nil {
		return res, err
	}
	defer func() { _ = os.RemoveAll(out) }()
	start = time.Now()
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(out, "db")
	if err := litestream.NewReplicaWithClient(nil, restoreClient).Restore(context.Background(), opt); err != nil {
		return res, err
	}
	v.Restore = time.Since(start)
	c = restoreClient.snapshot()
	v.RestoreCalls, v.RestoreBytes = c.Calls, c.Bytes
	res.VFS = v
	return res, nil
}

// childVFSScan reads every row through a VFS with a 16 MB page cache.
// Args: replica dir.
func childVFSScan(args []string) (res childResult, err error) {
	client, err := benchClient([]string{"file", args[0]})
	if err != nil {
		return res, err
	}
	start := time.Now()
	vfs := litestream.NewVFS(client, nil)
	vfs.CacheSize = vfsCacheSize
	if err := vfs.Register(); err != nil {
		return res, err
	}
	defer func() { _ = vfs.Close() }()
	db, err := sql.Open("sqlite", vfs.DSN("db"))
	if err != nil {
		return res, err
	}
	defer func() { _ = db.Close() }()
	v := &vfsResult{}
	var total int64
	if err := db.QueryRow(`SELECT count(*), sum(length(v)) FROM blobs`).Scan(&v.Rows, &total); err != nil {
		return res, fmt.Errorf("scan: %w (cause: %v)", err, vfs.LastError())
	}
	res.Duration, res.VFS = time.Since(start), v
	return res, nil
}
