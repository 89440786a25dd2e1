// MinIO for the s3 backend's tests and the s3 example.

package testserver

import (
	"context"
	"testing"

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
	return endpoint, MinIOAccessKey, MinIOSecretKey
}
