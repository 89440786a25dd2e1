// An HTTP readiness probe shared by the test servers and `make minio`.

package internal

import (
	"context"
	"fmt"
	"net/http"
)

// ProbeHTTP returns nil when a GET of url answers 200 OK.
func ProbeHTTP(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
