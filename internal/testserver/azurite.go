// Azurite (Azure Blob emulator) for the abs backend's tests.

package testserver

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/benbjohnson/litestream/internal"
)

// Azurite's fixed development account.
const (
	AzuriteAccountName = "devstoreaccount1"
	AzuriteAccountKey  = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azurite is a running Azurite blob service.
type Azurite struct {
	*Process
	// Endpoint is the path-style service URL, http://127.0.0.1:N/devstoreaccount1.
	Endpoint string
}

// StartAzurite starts azurite-blob (installed by scripts/install-azurite.sh)
// on a free loopback port with a temporary data directory and waits until it answers
// HTTP. --skipApiVersionCheck lets it accept the newer API version that
// current azblob releases send.
func StartAzurite(t testing.TB) *Azurite {
	t.Helper()
	bin := MustFindBinary(t, "azurite-blob")
	port := FreePort(t)
	dir := t.TempDir()
	p := Start(t, nil, bin,
		"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
		"--location", dir, "--skipApiVersionCheck", "--silent")
	base := fmt.Sprintf("http://%s", Addr(port))
	p.WaitFunc(t, "an HTTP answer from "+base+"/", func(ctx context.Context) error {
		return internal.ProbeHTTPServing(ctx, base+"/") // unauthenticated: 4xx once it serves
	})
	return &Azurite{Process: p, Endpoint: base + "/" + AzuriteAccountName}
}
