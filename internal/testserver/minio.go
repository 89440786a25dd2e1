// MinIO for the s3 backend's tests and the s3 example.

package testserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/benbjohnson/litestream/internal"
)

// MinIO root credentials used by StartMinIO.
const (
	MinIOAccessKey = "minioadmin"
	MinIOSecretKey = "minioadmin"
)

// StartMinIO starts a MinIO server (installed by scripts/install-minio.sh)
// on a free loopback port with a temporary data directory, waits until its
// readiness probe answers, and stops it when the test ends. It returns the
// http endpoint and the root credentials.
func StartMinIO(t testing.TB) (endpoint, accessKey, secretKey string) {
	t.Helper()
	bin := MustFindBinary(t, "minio")
	addr, consoleAddr := Addr(FreePort(t)), Addr(FreePort(t))
	p := Start(t, []string{
		"MINIO_ROOT_USER=" + MinIOAccessKey,
		"MINIO_ROOT_PASSWORD=" + MinIOSecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	}, bin, "server", t.TempDir(), "--quiet", "--address", addr, "--console-address", consoleAddr)

	endpoint = "http://" + addr
	p.WaitFunc(t, "200 OK from "+endpoint+"/minio/health/ready", func(ctx context.Context) error {
		return internal.ProbeHTTP(ctx, endpoint+"/minio/health/ready")
	})
	// The health probe can answer before the object layer and IAM are up,
	// when bucket calls still get 503 "Server not initialized yet": wait
	// for a signed ListBuckets, which needs both, to succeed.
	p.WaitFunc(t, "200 OK from a signed ListBuckets at "+endpoint, func(ctx context.Context) error {
		return minioListBuckets(ctx, endpoint)
	})
	return endpoint, MinIOAccessKey, MinIOSecretKey
}

// minioListBuckets sends ListBuckets signed with the root credentials.
func minioListBuckets(ctx context.Context, endpoint string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/", nil)
	if err != nil {
		return err
	}
	emptyHash := sha256.Sum256(nil)
	payloadHash := hex.EncodeToString(emptyHash[:])
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	creds := aws.Credentials{AccessKeyID: MinIOAccessKey, SecretAccessKey: MinIOSecretKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, payloadHash, "s3", "us-east-1", time.Now()); err != nil {
		return fmt.Errorf("sign ListBuckets: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("ListBuckets: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}
