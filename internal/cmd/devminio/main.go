// Command devminio runs a local MinIO server for trying examples/s3 (`make
// minio`): it starts the binary that scripts/install-minio.sh installed,
// waits until it is ready, creates the bucket, prints the environment the
// example needs, and stops MinIO on Ctrl+C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/benbjohnson/litestream/internal"
)

// MinIO's default root credentials; this server listens on loopback only.
const accessKey, secretKey = "minioadmin", "minioadmin"

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "S3 API listen address")
	dir := flag.String("dir", "", "data directory (required)")
	bucket := flag.String("bucket", "litestream-example", "bucket to create")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "-dir is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *dir, *bucket); err != nil {
		fmt.Fprintln(os.Stderr, "devminio:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr, dir, bucket string) error {
	bin, err := findMinIO()
	if err != nil {
		return err
	}
	consoleAddr, err := freeAddr()
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "server", dir, "--quiet", "--address", addr, "--console-address", consoleAddr)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+accessKey, "MINIO_ROOT_PASSWORD="+secretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}()

	endpoint := "http://" + addr
	if err := waitReady(ctx, endpoint, exited); err != nil {
		return err
	}
	if err := createBucket(ctx, endpoint, bucket); err != nil {
		return err
	}
	fmt.Printf("MinIO is serving %s with bucket %q (data in %s). In another shell:\n\n", endpoint, bucket, dir)
	fmt.Printf("  export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_REGION=us-east-1\n", accessKey, secretKey)
	fmt.Printf("  LITESTREAM_BUCKET=%s LITESTREAM_S3_ENDPOINT=%s go run ./examples/s3\n\nCtrl+C stops MinIO.\n", bucket, endpoint)

	select {
	case <-ctx.Done():
		return nil
	case err := <-exited:
		exited <- err // for the deferred stop
		return fmt.Errorf("minio exited: %w", err)
	}
}

// findMinIO looks where scripts/install-minio.sh installs, then on PATH.
func findMinIO() (string, error) {
	dir := os.Getenv("LITESTREAM_TEST_BIN")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "litestream-test", "bin")
	}
	if p := filepath.Join(dir, "minio"); fileExists(p) {
		return p, nil
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("minio not found in %s or on PATH: run scripts/install-minio.sh", dir)
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// freeAddr returns a loopback address that was free a moment ago, for
// MinIO's console listener (off, but it still binds one).
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find free port: %w", err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String(), nil
}

// waitReady polls MinIO's readiness probe for up to 3 minutes.
func waitReady(ctx context.Context, endpoint string, exited <-chan error) error {
	const timeout = 3 * time.Minute
	url := endpoint + "/minio/health/ready"
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("minio exited before %s answered: %v", url, err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		lastErr = probe(ctx, url)
		if lastErr == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("minio not ready after %s: waited for 200 OK from %s: %w", timeout, url, lastErr)
}

func probe(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return internal.ProbeHTTP(ctx, url)
}

// createBucket creates bucket unless this server already has it.
func createBucket(ctx context.Context, endpoint, bucket string) error {
	client := awss3.New(awss3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	})
	_, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket %q: %w", bucket, err)
	}
	return nil
}
