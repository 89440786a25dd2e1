//go:build !unix

// The restore's temporary file where flock(2) does not exist.

package litestream

import "os"

// openRestoreTemp opens tmpPath empty. Without flock nothing keeps a second
// restore into the same output from truncating it.
func openRestoreTemp(tmpPath string) (*os.File, error) {
	return os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}
