// Package testserver starts real backend servers (MinIO, Azurite, sshd, …)
// on 127.0.0.1 for tests, each on a free port with a temporary data
// directory, and stops them when the test ends. Servers are installed by
// `make test-deps` into BinDir; a test whose server is missing fails.
package testserver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// BinDir is where `make test-deps` installs server binaries:
// $LITESTREAM_TEST_BIN, else $HOME/.cache/litestream-test/bin.
func BinDir() string {
	if dir := os.Getenv("LITESTREAM_TEST_BIN"); dir != "" {
		return dir
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "litestream-test", "bin")
}

// MustFindBinary returns the path of a server binary in BinDir or, failing
// that, on PATH. It fails the test, naming the make target, if neither has it.
func MustFindBinary(t testing.TB, name string) string {
	t.Helper()
	if p := filepath.Join(BinDir(), name); isExecutable(p) {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("%s not installed in %s or on PATH: run `make test-deps`", name, BinDir())
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find free port: %v", err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

// Process is a server started for one test.
type Process struct {
	Cmd    *exec.Cmd
	output *syncBuffer
	done   chan struct{}
}

// Output returns what the server printed so far, for failure messages.
func (p *Process) Output() string { return p.output.String() }

// Start runs the command and registers a cleanup that kills it and waits.
func Start(t testing.TB, env []string, name string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	// A server's children (sshd's per-connection processes) may keep the
	// output pipe open after it is killed; don't wait for them forever.
	cmd.WaitDelay = time.Second
	p := &Process{Cmd: cmd, output: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// StartTimeout bounds every wait for a server to become ready. Servers start
// in seconds on an idle machine, but a cold Node (Azurite) or a machine busy
// compiling and running -race tests can take a minute or more.
const StartTimeout = 3 * time.Minute

// WaitTCP polls until addr accepts connections, the process exits, or
// StartTimeout passes; the last two fail the test with the server's output.
func (p *Process) WaitTCP(t testing.TB, addr string) {
	t.Helper()
	p.WaitFunc(t, "a TCP connection to "+addr, func(ctx context.Context) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = conn.Close()
		}
		return err
	})
}

// WaitSSHBanner polls until a connection to addr is greeted with an SSH
// version line, as WaitTCP does for a bare connection.
func (p *Process) WaitSSHBanner(t testing.TB, addr string) {
	t.Helper()
	p.WaitFunc(t, "an SSH banner from "+addr, func(ctx context.Context) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close() }()
		if deadline, ok := ctx.Deadline(); ok {
			_ = conn.SetReadDeadline(deadline)
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return fmt.Errorf("read banner: %w", err)
		} else if !strings.HasPrefix(line, "SSH-") {
			return fmt.Errorf("greeting %q is not an SSH banner", line)
		}
		return nil
	})
}

// WaitFunc polls ready every 50 ms until it returns nil, failing the test if
// the process exits or StartTimeout passes first; what names the readiness
// condition in that failure.
func (p *Process) WaitFunc(t testing.TB, what string, ready func(ctx context.Context) error) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(StartTimeout)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited after %s while waiting for %s:\n%s", p.Cmd.Path, time.Since(start).Round(time.Millisecond), what, p.Output())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = ready(ctx)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %s: waited for %s, last error: %v\n%s", p.Cmd.Path, StartTimeout, what, err, p.Output())
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 {
		return len(p), nil // keep the first MiB; enough to diagnose
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Addr formats 127.0.0.1:port.
func Addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
