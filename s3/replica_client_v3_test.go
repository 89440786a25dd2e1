package s3_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/benbjohnson/litestream"
	"github.com/benbjohnson/litestream/internal/clienttest"
)

// TestReplicaClient_V3 runs the v0.3.x suite on MinIO, with objects put
// through the plain S3 SDK at v0.3.x's keys.
func TestReplicaClient_V3(t *testing.T) {
	newClient, raw, bucket := MustMinIOBucket(t)
	clienttest.RunV3(t, func(t testing.TB, path string) litestream.ReplicaClient {
		return newClient(path)
	}, func(t testing.TB, key string, data []byte) {
		t.Helper()
		if _, err := raw.PutObject(context.Background(), &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	})
}
