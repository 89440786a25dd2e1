// rclone's WebDAV server for the webdav backend's tests.

package testserver

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/benbjohnson/litestream/internal"
)

// Rclone is a running `rclone serve webdav` of a temporary directory.
type Rclone struct {
	*Process
	// URL is the server's base URL, http://127.0.0.1:N.
	URL string
	// Username and Password are the Basic auth credentials it requires.
	Username, Password string
	// Dir is the served directory.
	Dir string
}

// StartRcloneWebDAV starts `rclone serve webdav` (Debian's rclone, installed
// by scripts/install-debian-servers.sh) over a temporary directory on a free
// loopback port, requiring Basic auth, and waits until it serves the
// directory to an authenticated GET.
func StartRcloneWebDAV(t testing.TB) *Rclone {
	t.Helper()
	bin := MustFindBinary(t, "rclone")
	dir := t.TempDir()
	port := FreePort(t)
	const user, pass = "litestream", "litestream-secret"
	p := Start(t, nil, bin, "serve", "webdav", dir,
		"--addr", Addr(port), "--user", user, "--pass", pass,
		"--config", "/dev/null")
	url := fmt.Sprintf("http://%s/", Addr(port))
	p.WaitFunc(t, "200 OK from an authenticated GET "+url, func(ctx context.Context) error {
		return internal.ProbeHTTP(ctx, url, func(req *http.Request) { req.SetBasicAuth(user, pass) })
	})
	return &Rclone{Process: p, URL: fmt.Sprintf("http://%s", Addr(port)), Username: user, Password: pass, Dir: dir}
}
