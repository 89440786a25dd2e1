// Tests of the file client.
package file_test

import (
	"path/filepath"
	"testing"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/internal/clienttest"
	"github.com/superfly/ltx"
)

// onDisk is a directory of the test's own as the shared tests reach it.
func onDisk(t testing.TB) clienttest.Fixture {
	root := t.TempDir()
	return clienttest.OnDisk(root, func(t testing.TB, path string) litestream.ReplicaClient {
		return file.NewReplicaClient(filepath.Join(root, path))
	})
}

// TestReplicaClient_Suites runs the shared suites on a directory, v0.3.x's
// backups written as its file replica laid them out. The conformance suite
// runs without the root subtests: a client at the root directory owns
// every file below it. Mtimes hold the header timestamp.
func TestReplicaClient_Suites(t *testing.T) {
	clienttest.RunBackend(t, clienttest.Backend{
		Start:     onDisk,
		NoRoot:    true,
		KeyLayout: clienttest.KeyLayoutOptions{ListedStamp: true},
		V3:        true,
		Leasing:   true,
	})
}

// A write removes the temporary files that dead writers left in its level
// directory (a SIGKILL between create and rename), but not recent ones
// another writer may still be writing, nor files that are not temporary
// uploads; listings never return any of them.
func TestReplicaClient_WriteLTXFile_RemovesStaleTemps(t *testing.T) {
	c := file.NewReplicaClient(t.TempDir())
	clienttest.RunStaleTemps(t, c, 1, c.LTXLevelDir(1),
		[]string{ltx.FormatFilename(1, 2) + ".123456.tmp"}, []string{"notes.tmp"}, []string{ltx.FormatFilename(3, 4) + ".654321.tmp"})
}
