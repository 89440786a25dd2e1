// MinIO for the s3 backend's tests and the s3 example.

package testserver

import (
	"context"
	"fmt"
	"net/http"
	"testing"
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
		return httpOK(ctx, endpoint+"/minio/health/ready")
	})
	return endpoint, MinIOAccessKey, MinIOSecretKey
}

// httpOK returns nil when a GET of u answers 200.
func httpOK(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}
