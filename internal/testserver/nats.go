// nats-server with JetStream for the nats backend's tests.

package testserver

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/benbjohnson/litestream/internal"
)

// NATS is a running nats-server with JetStream enabled.
type NATS struct {
	*Process
	// URL is the client URL, nats://127.0.0.1:N.
	URL string
}

// StartNATS starts nats-server (Debian's, installed by
// scripts/install-debian-servers.sh) with JetStream on free loopback ports
// and a temporary store directory, and waits until its monitoring endpoint
// reports JetStream healthy.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	bin := MustFindBinary(t, "nats-server")
	port, monitorPort := FreePort(t), FreePort(t)
	p := Start(t, nil, bin,
		"-a", "127.0.0.1", "-p", strconv.Itoa(port),
		"-m", strconv.Itoa(monitorPort),
		"-js", "-sd", t.TempDir())
	health := fmt.Sprintf("http://%s/healthz?js-enabled-only=true", Addr(monitorPort))
	p.WaitFunc(t, "JetStream healthy at "+health, func(ctx context.Context) error {
		return internal.ProbeHTTP(ctx, health)
	})
	return &NATS{Process: p, URL: "nats://" + Addr(port)}
}
