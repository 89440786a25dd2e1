// OpenSSH sshd for the sftp backend's tests.

package testserver

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// SSHD is a running OpenSSH server that allows SFTP (internal-sftp) to the
// current user with a generated key.
type SSHD struct {
	*Process
	// Addr is 127.0.0.1:port.
	Addr string
	// User is the login name: the user running the test.
	User string
	// KeyPath is the client's private key file (ed25519, no passphrase).
	KeyPath string
	// HostKey is the server's public host key in authorized_keys format.
	HostKey string
	// Dir is a directory the user may write to, for replica data, and the
	// sftp start directory.
	Dir string
}

// StartSSHD starts the Debian openssh-server's sshd (installed by
// scripts/install-debian-servers.sh) in the foreground on a free loopback
// port, with host and client keys generated into a temporary directory and
// public-key authentication only.
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	sshd := "/usr/sbin/sshd" // sshd refuses to run without an absolute path
	if !isExecutable(sshd) {
		sshd = MustFindBinary(t, "sshd")
	}
	keygen := MustFindBinary(t, "ssh-keygen")

	u, err := user.Current()
	if err != nil {
		t.Fatalf("current user: %v", err)
	}
	dir := t.TempDir()
	hostKey := filepath.Join(dir, "host_ed25519")
	clientKey := filepath.Join(dir, "client_ed25519")
	for _, key := range []string{hostKey, clientKey} {
		if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %s: %v\n%s", key, err, out)
		}
	}
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	authorizedKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorizedKeys, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	// Privilege separation wants this directory; creating it needs root.
	if os.Geteuid() == 0 {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}

	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	config := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(config, []byte(strings.Join([]string{
		fmt.Sprintf("Port %d", port),
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKey,
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + authorizedKeys,
		"AuthenticationMethods publickey",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"StrictModes no",
		"UsePAM no",
		"Subsystem sftp internal-sftp -d " + data, // a client with no path works in data, not the user's home
		"",
	}, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sshd, "-t", "-f", config).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t: %v\n%s", err, out)
	}

	p := startDetached(t, filepath.Join(dir, "sshd.log"), sshd, "-D", "-e", "-f", config)
	p.WaitSSHBanner(t, Addr(port))
	return &SSHD{
		Process: p,
		Addr:    Addr(port),
		User:    u.Username,
		KeyPath: clientKey,
		HostKey: strings.TrimSpace(string(hostPub)),
		Dir:     data,
	}
}

// startDetached is Start for servers that fork long-lived children which
// inherit stdout and stderr, as sshd does for each connection (in a new
// session, so out of reach of a process-group kill). Output goes to a log
// file rather than a pipe, so that waiting for the killed server does not
// wait for its children to close the pipe; the log is copied into Output
// when the server exits. The children end when their clients disconnect.
func startDetached(t testing.TB, logPath, name string, args ...string) *Process {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p := &Process{Cmd: cmd, output: &syncBuffer{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		if b, err := os.ReadFile(logPath); err == nil {
			_, _ = p.output.Write(b)
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}
