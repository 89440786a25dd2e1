// Test that runs the basic example.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// Run the example, stop it with SIGINT, and restore: every row it printed
// must be in the replica.
func TestBasicExample(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "basic")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	cmd := exec.Command(bin)
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	var printed []string
	scanner := bufio.NewScanner(stdout)
	for scanner.Scan() {
		line := scanner.Text()
		if strings.HasPrefix(line, "row ") {
			printed = append(printed, strings.Fields(line)[2])
			if len(printed) == 3 {
				if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("example exited with %v\n%s", err, stderr.String())
	}
	if len(printed) < 3 {
		t.Fatalf("example printed %d rows before stopping\n%s", len(printed), stderr.String())
	}
	for _, name := range []string{"myapp.db", "replica"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("example did not create %s: %v", name, err)
		}
	}

	r := litestream.NewReplicaWithClient(nil, file.NewReplicaClient(filepath.Join(dir, "replica")))
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Restore(ctx, opt); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+opt.OutputPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	for _, createdAt := range printed {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM events WHERE created_at = ?`, createdAt).Scan(&n); err != nil {
			t.Fatal(err)
		} else if n != 1 {
			t.Fatalf("printed row %s is not in the restored database", createdAt)
		}
	}
}
