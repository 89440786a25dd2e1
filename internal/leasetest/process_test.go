// Package leasetest runs leases between real processes on every backend
// that has a leaser: this test binary re-runs itself as the writer
// (LITESTREAM_TEST_CHILD=lease-writer), one process per writer with its own
// local database, all replicating to one replica path, as containers of a
// rolling deploy would. It is a package of its own because it links every
// backend, which the root package's tests must not.
package leasetest_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/api/option"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/abs"
	"github.com/benbjohnson/litestream/file"
	"github.com/benbjohnson/litestream/gs"
	"github.com/benbjohnson/litestream/internal/testserver"
	lnats "github.com/benbjohnson/litestream/nats"
	"github.com/benbjohnson/litestream/s3"
	_ "modernc.org/sqlite"
)

func TestMain(m *testing.M) {
	if os.Getenv("LITESTREAM_TEST_CHILD") == "lease-writer" {
		if err := leaseWriterChild(os.Getenv("LITESTREAM_TEST_DIR")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// leaseBackend says how a child reaches the shared replica.
type leaseBackend struct {
	Type      string `json:"type"` // "file", "s3", "gs", "abs" or "nats"
	Path      string `json:"path"` // directory (file) or key prefix
	Endpoint  string `json:"endpoint,omitempty"`
	AccessKey string `json:"access_key,omitempty"`
	SecretKey string `json:"secret_key,omitempty"`
	Bucket    string `json:"bucket,omitempty"`
}

// leaseChildConfig configures one lease-writer child.
type leaseChildConfig struct {
	Backend leaseBackend  `json:"backend"`
	Name    string        `json:"name"` // the lease owner and the rows' prefix
	Wait    bool          `json:"wait"`
	TTL     time.Duration `json:"ttl"`
	Renew   time.Duration `json:"renew"`
}

// client returns the replica's client and a leaser for it.
func (b leaseBackend) client() (litestream.ReplicaClient, litestream.Leaser, error) {
	switch b.Type {
	case "file":
		c := file.NewReplicaClient(b.Path)
		return c, c.NewLeaser(), nil
	case "s3":
		c := s3.NewReplicaClient()
		c.AccessKeyID, c.SecretAccessKey = b.AccessKey, b.SecretKey
		c.Bucket, c.Path, c.Endpoint, c.ForcePathStyle = b.Bucket, b.Path, b.Endpoint, true
		return c, c.NewLeaser(), nil
	case "gs":
		c := gs.NewReplicaClient()
		c.Bucket, c.Path = b.Bucket, b.Path
		c.ClientOptions = []option.ClientOption{option.WithEndpoint(b.Endpoint + "/storage/v1/"), option.WithoutAuthentication()}
		return c, c.NewLeaser(), nil
	case "abs":
		c := abs.NewReplicaClient()
		c.AccountName, c.AccountKey = testserver.AzuriteAccountName, testserver.AzuriteAccountKey
		c.Endpoint, c.Bucket, c.Path = b.Endpoint, b.Bucket, b.Path
		return c, c.NewLeaser(), nil
	case "nats":
		c := lnats.NewReplicaClient()
		c.URL, c.BucketName, c.Path = b.Endpoint, b.Bucket, b.Path
		return c, c.NewLeaser(), nil
	}
	return nil, nil, fmt.Errorf("unknown backend %q", b.Type)
}

// leaseWriterChild replicates dir/app.db with a lease and writes a row every
// few milliseconds until SIGTERM. It appends its state changes to
// dir/status: "acquired", "fenced: <error>", "lease-exists: <error>",
// "closed".
func leaseWriterChild(dir string) error {
	var cfg leaseChildConfig
	if err := json.Unmarshal([]byte(os.Getenv("LITESTREAM_TEST_LEASE")), &cfg); err != nil {
		return err
	}
	status, err := os.OpenFile(filepath.Join(dir, "status"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	report := func(format string, args ...any) { _, _ = fmt.Fprintf(status, format+"\n", args...) }

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	client, leaser, err := cfg.Backend.client()
	if err != nil {
		return err
	}
	switch l := leaser.(type) {
	case *file.Leaser:
		l.TTL, l.Owner = cfg.TTL, cfg.Name
	case *s3.Leaser:
		l.TTL, l.Owner = cfg.TTL, cfg.Name
	case *gs.Leaser:
		l.TTL, l.Owner = cfg.TTL, cfg.Name
	case *abs.Leaser:
		l.TTL, l.Owner = cfg.TTL, cfg.Name
	case *lnats.Leaser:
		l.TTL, l.Owner = cfg.TTL, cfg.Name
	}
	dbPath := filepath.Join(dir, "app.db")
	db := litestream.NewDB(dbPath)
	db.MonitorInterval, db.ShutdownSyncTimeout = 50*time.Millisecond, 5*time.Second
	replica := litestream.NewReplicaWithClient(db, client)
	replica.SyncInterval = 50 * time.Millisecond
	replica.Leaser, replica.LeaseWait, replica.LeaseRenewInterval = leaser, cfg.Wait, cfg.Renew
	db.Replica = replica

	var exists *litestream.LeaseExistsError
	if err := db.EnsureExists(ctx); errors.As(err, &exists) {
		report("lease-exists: %v", err)
		os.Exit(3)
	} else if err != nil {
		return fmt.Errorf("ensure exists: %w", err)
	}
	report("acquired")
	store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
	if err := store.Open(ctx); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	app, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
	if err != nil {
		return err
	}
	if _, err := app.Exec(`CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		return err
	}

	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	fenced := false
	for n := 0; ; n++ {
		select {
		case <-sigs:
			_ = app.Close()
			if err := store.Close(context.Background()); err != nil {
				report("close-error: %v", err)
				if !errors.Is(err, litestream.ErrLeaseNotHeld) {
					return err
				}
			}
			report("closed")
			return nil
		case <-ticker.C:
		}
		if fenced {
			continue // an application told its replica is fenced stops writing
		}
		if st, _ := db.SyncStatus(ctx); st.LeaseLost != nil {
			fenced = true
			report("fenced: %v", st.LeaseLost)
			continue
		}
		if _, err := app.Exec(`INSERT INTO t (v) VALUES (?)`, fmt.Sprintf("%s-%d", cfg.Name, n)); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
	}
}

// leaseChild is a running lease-writer.
type leaseChild struct {
	t    *testing.T
	dir  string
	cmd  *exec.Cmd
	done chan error
	out  *strings.Builder
}

func startLeaseChild(t *testing.T, backend leaseBackend, name string, wait bool, ttl, renew time.Duration) *leaseChild {
	t.Helper()
	cfg, _ := json.Marshal(leaseChildConfig{Backend: backend, Name: name, Wait: wait, TTL: ttl, Renew: renew})
	c := &leaseChild{t: t, dir: t.TempDir(), done: make(chan error, 1), out: &strings.Builder{}}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), "LITESTREAM_TEST_CHILD=lease-writer", "LITESTREAM_TEST_DIR="+c.dir, "LITESTREAM_TEST_LEASE="+string(cfg))
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Signal(syscall.SIGCONT)
		_ = c.cmd.Process.Kill()
		<-c.done
	})
	return c
}

// status returns the child's status lines so far.
func (c *leaseChild) status() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "status"))
	return string(b)
}

// waitStatus polls until the status has a line starting with prefix.
func (c *leaseChild) waitStatus(prefix string, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !c.hasStatus(prefix) {
		if time.Now().After(deadline) {
			c.t.Fatalf("child %s: no %q status after %s; status %q, output:\n%s", c.dir, prefix, timeout, c.status(), c.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *leaseChild) hasStatus(prefix string) bool {
	for _, line := range strings.Split(c.status(), "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

// stop sends SIGTERM and waits for a clean exit.
func (c *leaseChild) stop() {
	c.t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		c.done <- err // for the cleanup
		if err != nil {
			c.t.Fatalf("child %s: %v; status %q, output:\n%s", c.dir, err, c.status(), c.out)
		}
	case <-time.After(30 * time.Second):
		c.t.Fatalf("child %s did not exit after SIGTERM; output:\n%s", c.dir, c.out)
	}
}

// rows returns the application rows of a child that replicated all of
// them and closed cleanly.
func (c *leaseChild) rows() string {
	c.t.Helper()
	if st := c.status(); !strings.Contains(st, "closed") || strings.Contains(st, "close-error") || strings.Contains(st, "fenced") {
		c.t.Fatalf("child %s did not replicate until a clean close: status %q, output:\n%s", c.dir, st, c.out)
	}
	return mustDumpT(c.t, filepath.Join(c.dir, "app.db"))
}

func mustDumpT(t testing.TB, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var s sql.NullString
	if err := db.QueryRow(`SELECT group_concat(id || '=' || v, ',') FROM (SELECT id, v FROM t ORDER BY id)`).Scan(&s); err != nil {
		t.Fatalf("dump %s: %v", path, err)
	}
	return s.String
}

// mustCheckReplica fails unless L0 is dense and a restore of the replica
// holds exactly want.
func mustCheckReplica(t *testing.T, backend leaseBackend, want string) {
	t.Helper()
	client, _, err := backend.client()
	if err != nil {
		t.Fatal(err)
	}
	r := litestream.NewReplicaWithClient(nil, client)
	ctx := context.Background()
	if errs, err := r.ValidateLevel(ctx, 0); err != nil || len(errs) > 0 {
		t.Fatalf("L0 of the replica: %v %+v", err, errs)
	}
	opt := litestream.NewRestoreOptions()
	opt.OutputPath = filepath.Join(t.TempDir(), "restored.db")
	if err := r.Restore(ctx, opt); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := mustDumpT(t, opt.OutputPath); got != want || want == "" {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		i = max(i-40, 0)
		t.Fatalf("restored rows (%d bytes) differ from the last writer's (%d bytes) at byte %d:\n got …%.200s\nwant …%.200s", len(got), len(want), i, got[i:], want[i:])
	}
}

// replicaMaxTXID returns the replica's newest L0 TXID.
func replicaMaxTXID(t testing.TB, backend leaseBackend) uint64 {
	t.Helper()
	client, _, err := backend.client()
	if err != nil {
		t.Fatal(err)
	}
	info, err := litestream.NewReplicaWithClient(nil, client).MaxLTXFileInfo(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(info.MaxTXID)
}

// runLeaseProcessTests runs the multi-process lease scenarios on a backend;
// newBackend returns a fresh replica path each call.
func runLeaseProcessTests(t *testing.T, newBackend func() leaseBackend) {
	// Two processes start at once in fail-fast mode: one replicates, the
	// other gets *LeaseExistsError and writes nothing.
	t.Run("FailFast", func(t *testing.T) {
		backend := newBackend()
		a := startLeaseChild(t, backend, "a", false, 10*time.Second, time.Second)
		b := startLeaseChild(t, backend, "b", false, 10*time.Second, time.Second)
		var winner, loser *leaseChild
		deadline := time.Now().Add(time.Minute)
		for winner == nil {
			switch {
			case a.hasStatus("lease-exists") && b.hasStatus("acquired"):
				winner, loser = b, a
			case b.hasStatus("lease-exists") && a.hasStatus("acquired"):
				winner, loser = a, b
			case a.hasStatus("acquired") && b.hasStatus("acquired"):
				t.Fatal("both processes acquired the lease")
			case time.Now().After(deadline):
				t.Fatalf("no outcome: a %q, b %q\n%s\n%s", a.status(), b.status(), a.out, b.out)
			}
			time.Sleep(10 * time.Millisecond)
		}
		var exitErr *exec.ExitError
		if err := <-loser.done; !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
			t.Fatalf("loser exit: %v, want exit code 3", err)
		}
		loser.done <- nil
		start := replicaMaxTXID(t, backend)
		for replicaMaxTXID(t, backend) < start+5 {
			time.Sleep(20 * time.Millisecond)
		}
		winner.stop()
		mustCheckReplica(t, backend, winner.rows())
	})

	// Rolling deploy: B waits while A replicates, takes over when A is
	// stopped and releases, continues A's TXIDs and the restore equals B's
	// data, which includes A's.
	t.Run("RollingDeploy", func(t *testing.T) {
		backend := newBackend()
		const ttl, renew = 20 * time.Second, 100 * time.Millisecond
		a := startLeaseChild(t, backend, "a", true, ttl, renew)
		a.waitStatus("acquired", time.Minute)
		b := startLeaseChild(t, backend, "b", true, ttl, renew)
		for start := replicaMaxTXID(t, backend); replicaMaxTXID(t, backend) < start+10; {
			time.Sleep(20 * time.Millisecond)
		}
		if b.hasStatus("acquired") {
			t.Fatal("B acquired the lease while A holds it")
		}
		stopped := time.Now()
		a.stop()
		aRows := a.rows()
		b.waitStatus("acquired", time.Minute)
		if took := time.Since(stopped); took >= ttl {
			t.Fatalf("B took over after %s, no sooner than A's TTL of %s: the release did not hand the lease over", took, ttl)
		}
		for start := replicaMaxTXID(t, backend); replicaMaxTXID(t, backend) < start+10; {
			time.Sleep(20 * time.Millisecond)
		}
		b.stop()
		bRows := b.rows()
		if !strings.HasPrefix(bRows, aRows) || len(bRows) == len(aRows) {
			t.Fatalf("B's data does not continue A's:\nA %.200s\nB %.200s", aRows, bRows)
		}
		mustCheckReplica(t, backend, bRows)
	})

	// Paused writer: A is stopped past its TTL, B takes over and writes;
	// A, continued, finds itself fenced and the replica keeps B's history.
	t.Run("PausedWriter", func(t *testing.T) {
		backend := newBackend()
		// The TTL leaves room for renewals delayed by a loaded machine: a
		// holder that misses them for a whole TTL stops by itself.
		const ttl, renew = 3 * time.Second, 100 * time.Millisecond
		a := startLeaseChild(t, backend, "a", true, ttl, renew)
		a.waitStatus("acquired", time.Minute)
		for start := replicaMaxTXID(t, backend); replicaMaxTXID(t, backend) < start+5; {
			time.Sleep(20 * time.Millisecond)
		}
		if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		b := startLeaseChild(t, backend, "b", true, ttl, renew)
		b.waitStatus("acquired", time.Minute)
		for start := replicaMaxTXID(t, backend); replicaMaxTXID(t, backend) < start+5; {
			time.Sleep(20 * time.Millisecond)
		}
		if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		a.waitStatus("fenced", time.Minute)
		if !strings.Contains(a.status(), "lease not held") {
			t.Fatalf("A's fence error does not match ErrLeaseNotHeld: %q", a.status())
		}
		// B keeps replicating after A woke up and gave up.
		for start := replicaMaxTXID(t, backend); replicaMaxTXID(t, backend) < start+5; {
			time.Sleep(20 * time.Millisecond)
		}
		if b.hasStatus("fenced") {
			t.Fatalf("B was fenced: %q", b.status())
		}
		a.stop()
		b.stop()
		mustCheckReplica(t, backend, b.rows())
	})
}

func TestLease_Processes_File(t *testing.T) {
	root := t.TempDir()
	n := 0
	runLeaseProcessTests(t, func() leaseBackend {
		n++
		return leaseBackend{Type: "file", Path: filepath.Join(root, fmt.Sprint(n))}
	})
}

func TestLease_Processes_S3(t *testing.T) {
	endpoint, ak, sk := testserver.StartMinIO(t)
	raw := awss3.New(awss3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(ak, sk, "")})
	bucket := fmt.Sprintf("lease-%d", time.Now().UnixNano()%1e9)
	// MinIO answers 503 for a moment after it starts listening.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		_, err := raw.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(bucket)})
		if err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("create bucket: %v", err)
		}
	}
	n := 0
	runLeaseProcessTests(t, func() leaseBackend {
		n++
		return leaseBackend{Type: "s3", Path: fmt.Sprintf("db%d", n), Endpoint: endpoint, AccessKey: ak, SecretKey: sk, Bucket: bucket}
	})
}

func TestLease_Processes_GS(t *testing.T) {
	t.Setenv("STORAGE_EMULATOR_HOST", "") // children use only the explicit options
	endpoint := testserver.StartFakeGCS(t)
	client, err := storage.NewClient(context.Background(), option.WithEndpoint(endpoint+"/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Close() }()
	if err := client.Bucket("lease").Create(context.Background(), "test-project", nil); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	n := 0
	runLeaseProcessTests(t, func() leaseBackend {
		n++
		return leaseBackend{Type: "gs", Path: fmt.Sprintf("db%d", n), Endpoint: endpoint, Bucket: "lease"}
	})
}

func TestLease_Processes_ABS(t *testing.T) {
	srv := testserver.StartAzurite(t)
	cred, err := container.NewSharedKeyCredential(testserver.AzuriteAccountName, testserver.AzuriteAccountKey)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := container.NewClientWithSharedKeyCredential(srv.Endpoint+"/lease", cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cc.Create(context.Background(), nil); err != nil {
		t.Fatalf("create container: %v", err)
	}
	n := 0
	runLeaseProcessTests(t, func() leaseBackend {
		n++
		return leaseBackend{Type: "abs", Path: fmt.Sprintf("db%d", n), Endpoint: srv.Endpoint, Bucket: "lease"}
	})
}

func TestLease_Processes_NATS(t *testing.T) {
	srv := testserver.StartNATS(t)
	nc, err := nats.Connect(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateObjectStore(context.Background(), jetstream.ObjectStoreConfig{Bucket: "lease"}); err != nil {
		t.Fatalf("create object store: %v", err)
	}
	n := 0
	runLeaseProcessTests(t, func() leaseBackend {
		n++
		return leaseBackend{Type: "nats", Path: fmt.Sprintf("db%d", n), Endpoint: srv.URL, Bucket: "lease"}
	})
}
