// Example of heartbeats and the control server, run by go test. The
// README's Go code is copied from here too (readme_test.go checks it).
package litestream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/file"
)

// Ping a monitoring URL while every database replicates, and control the
// store over a unix socket.
func ExampleNewServer() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ls")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	db := litestream.NewDB(filepath.Join(dir, "app.db"))
	db.Replica = litestream.NewReplicaWithClient(db, file.NewReplicaClient(filepath.Join(dir, "replica")))
	store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)

	// A GET to the URL at most every 5 minutes, only while all databases replicate.
	store.Heartbeat = litestream.NewHeartbeatClient("https://hc-ping.com/your-check-id", 5*time.Minute)
	if err := store.Open(ctx); err != nil {
		log.Fatal(err)
	}
	defer func() { _ = store.Close(ctx) }()

	server := litestream.NewServer(store)
	server.SocketPath = filepath.Join(dir, "litestream.sock") // permissions 0600 unless SocketPerms says otherwise
	if err := server.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { _ = server.Close() }()

	// Any HTTP client that dials the socket: curl --unix-socket <path> http://localhost/list
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", server.SocketPath)
		},
	}}
	resp, err := client.Get("http://localhost/list")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var list litestream.ListResponse
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(list.Databases), list.Databases[0].Status)
	// Output: 1 replicating
}
