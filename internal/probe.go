// An HTTP readiness probe shared by the test servers and `make minio`.

package internal

import (
	"context"
	"fmt"
	"net/http"
)

// ProbeHTTP returns nil when a GET of url answers 200 OK. Each prepare
// function may change the request first, to add credentials for example.
func ProbeHTTP(ctx context.Context, url string, prepare ...func(*http.Request)) error {
	return probe(ctx, url, func(status int) bool { return status == http.StatusOK }, prepare)
}

// ProbeHTTPServing returns nil when a GET of url gets any answer but a
// server error: for a service that refuses requests without credentials
// once it serves.
func ProbeHTTPServing(ctx context.Context, url string) error {
	return probe(ctx, url, func(status int) bool { return status < 500 }, nil)
}

func probe(ctx context.Context, url string, ok func(status int) bool, prepare []func(*http.Request)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for _, f := range prepare {
		f(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if !ok(resp.StatusCode) {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
