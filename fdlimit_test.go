//go:build linux

// fdlimit_test.go checks that databases that cannot start for lack of file
// descriptors say so, with the number to raise the limit to.
package litestream_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
	"github.com/superfly/ltx"
)

const fdLimitChildEnv = "LITESTREAM_TEST_FDLIMIT_CHILD"

// A process whose descriptor limit leaves room for only a few databases:
// the rest report an error naming RLIMIT_NOFILE and what to raise it to.
func TestStore_DescriptorLimitIsExplained(t *testing.T) {
	if os.Getenv(fdLimitChildEnv) != "" {
		fdLimitChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestStore_DescriptorLimitIsExplained$", "-test.count=1")
	cmd.Env = append(os.Environ(), fdLimitChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	if !strings.Contains(string(out), "explained: ") {
		t.Fatalf("child did not report an explained error:\n%s", out)
	}
}

func fdLimitChild(t *testing.T) {
	dir := t.TempDir()
	var dbs []*litestream.DB
	for i := 0; i < 40; i++ {
		path := filepath.Join(dir, fmt.Sprintf("db%02d", i))
		MustOpenApp(t, path, 4096).Close()
		db := litestream.NewDB(path)
		db.MonitorInterval = 20 * time.Millisecond
		db.Replica = litestream.NewReplicaWithClient(db, file.NewReplicaClient(path+"-replica"))
		dbs = append(dbs, db)
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	// Room for a few databases beyond what the process holds now.
	lim := syscall.Rlimit{Cur: uint64(len(entries) + 40), Max: uint64(len(entries) + 40)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	store := litestream.NewStore(dbs, litestream.DefaultCompactionLevels)
	if err := store.Open(context.Background()); err != nil {
		t.Fatalf("open: %v", err)
	}
	defer func() { _ = store.Close(context.Background()) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, db := range dbs {
			if err := db.Sync(context.Background()); err != nil && strings.Contains(err.Error(), "RLIMIT_NOFILE") {
				if !strings.Contains(err.Error(), "raise the limit") {
					t.Fatalf("error names the limit but not what to do: %v", err)
				}
				fmt.Println("explained:", err)
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no database reported running out of descriptors")
}

// A restore plan of many files (a replica whose compaction stalled, or a
// restore by TXID that needs every L0 file since the snapshot) must not hold
// a descriptor per planned file: each spooled file is closed once applied
// and only a few are downloaded ahead, at any parallelism. Here 300 files
// under a limit of 100 descriptors beyond those the process holds.
func TestReplica_Restore_LongPlanDescriptors(t *testing.T) {
	dir := t.TempDir()
	const n = 300
	writeTestLTX(t, dir, litestream.SnapshotLevel, 1, 4, pageRange(1, 4))
	for txid := ltx.TXID(2); txid <= n; txid++ {
		writeTestLTX(t, dir, 0, txid, 4, []uint32{2})
	}

	for _, parallelism := range []int{1, 4} {
		t.Run(fmt.Sprint(parallelism), func(t *testing.T) {
			opt := litestream.NewRestoreOptions()
			opt.OutputPath = filepath.Join(t.TempDir(), "db")
			opt.Parallelism = parallelism

			entries, err := os.ReadDir("/proc/self/fd")
			if err != nil {
				t.Fatal(err)
			}
			var lim syscall.Rlimit
			if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
				t.Fatal(err)
			}
			low := lim
			low.Cur = uint64(len(entries) + 100)
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
				t.Skip(err)
			}
			err = litestream.NewReplicaWithClient(nil, file.NewReplicaClient(dir)).Restore(context.Background(), opt)
			if serr := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); serr != nil {
				t.Fatal(serr)
			}
			if err != nil {
				t.Fatalf("restore of a %d-file plan, parallelism %d, with 100 descriptors to spare: %v", n, parallelism, err)
			}
			got, err := os.ReadFile(opt.OutputPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[testPageSize:2*testPageSize], testPage(n, 2)) {
				t.Fatal("page 2 is not the last file's")
			}
		})
	}
}
