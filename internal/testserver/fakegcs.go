// fake-gcs-server for the gs backend's tests.

package testserver

import (
	"context"
	"strconv"
	"testing"

	"github.com/benbjohnson/litestream/internal"
)

// StartFakeGCS starts fake-gcs-server (installed by
// scripts/install-fake-gcs-server.sh) over plain http on a free loopback
// port with an in-memory backend, waits until its JSON API answers, and stops
// it when the test ends. It returns the base URL, e.g. http://127.0.0.1:4443;
// the JSON API is under /storage/v1/ and object reads use the XML form
// /<bucket>/<object> on the same host.
func StartFakeGCS(t testing.TB) (endpoint string) {
	t.Helper()
	bin := MustFindBinary(t, "fake-gcs-server")
	port := FreePort(t)
	addr := Addr(port)
	endpoint = "http://" + addr
	p := Start(t, nil, bin,
		"-scheme", "http",
		"-host", "127.0.0.1",
		"-port", strconv.Itoa(port),
		"-backend", "memory",
		"-public-host", addr,
		"-external-url", endpoint,
		"-log-level", "warn",
	)
	p.WaitFunc(t, "200 OK from "+endpoint+"/storage/v1/b", func(ctx context.Context) error {
		return internal.ProbeHTTP(ctx, endpoint+"/storage/v1/b?project=test")
	})
	return endpoint
}
