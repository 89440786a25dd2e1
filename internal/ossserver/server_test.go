// Tests of the local OSS test server.
package ossserver_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/aliyun-oss-go-sdk/oss"

	"github.com/benbjohnson/litestream/internal/ossserver"
)

func mustBucket(t *testing.T, endpoint, ak, sk string, opts ...oss.ClientOption) *oss.Bucket {
	t.Helper()
	client, err := oss.New(endpoint, ak, sk, opts...)
	if err != nil {
		t.Fatal(err)
	}
	_ = client.CreateBucket("bkt")
	b, err := client.Bucket("bkt")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServer_Auth(t *testing.T) {
	endpoint, ak, sk := ossserver.Start(t)
	good := mustBucket(t, endpoint, ak, sk)
	if err := good.PutObject("k", strings.NewReader("v")); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct{ name, ak, sk, code string }{
		{"ErrWrongSecret", ak, sk + "x", "SignatureDoesNotMatch"},
		{"ErrUnknownKey", "other", sk, "InvalidAccessKeyId"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := mustBucket(t, endpoint, tt.ak, tt.sk)
			_, err := b.GetObject("k")
			var se oss.ServiceError
			if !errors.As(err, &se) || se.StatusCode != http.StatusForbidden || se.Code != tt.code {
				t.Fatalf("err = %v, want 403 %s", err, tt.code)
			}
		})
	}
	t.Run("ErrAnonymous", func(t *testing.T) {
		resp, err := http.Get(endpoint + "/bkt/k")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status = %d, want 403", resp.StatusCode)
		}
	})
}

func TestServer_Objects(t *testing.T) {
	endpoint, ak, sk := ossserver.Start(t)
	b := mustBucket(t, endpoint, ak, sk)
	data := []byte("0123456789abcdefghij")
	if err := b.PutObject("dir/a b+c", bytes.NewReader(data), oss.Meta("x", "1")); err != nil {
		t.Fatal(err)
	}

	t.Run("Range", func(t *testing.T) {
		rc, err := b.GetObject("dir/a b+c", oss.NormalizedRange("5-9"), oss.RangeBehavior("standard"))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		_ = rc.Close()
		if string(got) != "56789" {
			t.Fatalf("got %q", got)
		}
		_, err = b.GetObject("dir/a b+c", oss.NormalizedRange("50-"), oss.RangeBehavior("standard"))
		var se oss.ServiceError
		if !errors.As(err, &se) || se.Code != "InvalidRange" {
			t.Fatalf("err = %v, want InvalidRange", err)
		}
	})
	t.Run("InvalidObjectName", func(t *testing.T) {
		err := b.PutObject("/0000/a", bytes.NewReader(data))
		var se oss.ServiceError
		if !errors.As(err, &se) || se.Code != "InvalidObjectName" {
			t.Fatalf("err = %v, want InvalidObjectName", err)
		}
	})
	t.Run("HeadMeta", func(t *testing.T) {
		h, err := b.GetObjectDetailedMeta("dir/a b+c")
		if err != nil || h.Get("X-Oss-Meta-X") != "1" || h.Get("Content-Length") != "20" {
			t.Fatalf("head = %v, %v", h, err)
		}
		_, err = b.GetObjectDetailedMeta("missing")
		var se oss.ServiceError
		if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
			t.Fatalf("err = %v, want 404", err)
		}
	})
	t.Run("ListPagesEncoded", func(t *testing.T) {
		for _, k := range []string{"dir/x+1", "dir/y 2", "dir/z%3"} {
			if err := b.PutObject(k, strings.NewReader(k)); err != nil {
				t.Fatal(err)
			}
		}
		var keys []string
		token := ""
		for pages := 0; ; pages++ {
			opts := []oss.Option{oss.Prefix("dir/"), oss.MaxKeys(2)}
			if token != "" {
				opts = append(opts, oss.ContinuationToken(token))
			}
			res, err := b.ListObjectsV2(opts...)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range res.Objects {
				keys = append(keys, o.Key)
			}
			if !res.IsTruncated {
				if pages != 1 {
					t.Fatalf("pages = %d, want 2", pages+1)
				}
				break
			}
			token = res.NextContinuationToken
		}
		if got := strings.Join(keys, ","); got != "dir/a b+c,dir/x+1,dir/y 2,dir/z%3" {
			t.Fatalf("keys = %s", got)
		}
	})
	t.Run("DeleteObjects", func(t *testing.T) {
		res, err := b.DeleteObjects([]string{"dir/x+1", "dir/never"})
		if err != nil {
			t.Fatal(err)
		} else if strings.Join(res.DeletedObjects, ",") != "dir/x+1,dir/never" {
			t.Fatalf("deleted = %v", res.DeletedObjects)
		}
		if ok, _ := b.IsObjectExist("dir/x+1"); ok {
			t.Fatal("object still exists")
		}
	})
	t.Run("ErrDeleteBadMD5", func(t *testing.T) {
		body := "<Delete><Quiet>false</Quiet><Object><Key>dir/y 2</Key></Object></Delete>"
		req, _ := http.NewRequest(http.MethodPost, endpoint+"/bkt/?delete", strings.NewReader(body))
		req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
		req.Header.Set("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==") // MD5 of ""
		req.Header.Set("Authorization", "OSS "+ak+":"+ossserver.SignV1(sk, req, "bkt", ""))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "InvalidDigest") {
			t.Fatalf("status %d body %s, want 400 InvalidDigest", resp.StatusCode, msg)
		}
		if ok, _ := b.IsObjectExist("dir/y 2"); !ok {
			t.Fatal("object deleted despite bad digest")
		}
	})
}
