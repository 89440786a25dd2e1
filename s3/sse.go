// Server-side encryption settings for S3: SSE-C and SSE-KMS.

package s3

import (
	"crypto/md5"
	"encoding/base64"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/benbjohnson/litestream"
)

// validateSSE checks the server-side encryption settings and fills
// SSECustomerKeyMD5 and the default algorithm, once: it runs while the
// connection is made.
func (c *ReplicaClient) validateSSE() error {
	if c.SSECustomerKey == "" {
		if c.SSECustomerAlgorithm != "" || c.SSECustomerKeyMD5 != "" {
			return be.Errorf("sse-customer-key required with sse-customer-algorithm or sse-customer-key-md5")
		}
		return nil
	}
	if c.SSEKMSKeyID != "" {
		return be.Errorf("SSE-C and SSE-KMS cannot be used together")
	}
	if c.SSECustomerAlgorithm == "" {
		c.SSECustomerAlgorithm = "AES256"
	} else if c.SSECustomerAlgorithm != "AES256" {
		return be.Errorf("unsupported sse-customer-algorithm %q (want AES256)", c.SSECustomerAlgorithm)
	}
	key, err := base64.StdEncoding.DecodeString(c.SSECustomerKey)
	if err != nil {
		return be.Errorf("sse-customer-key is not base64: %w", err)
	} else if len(key) != 32 {
		return be.Errorf("sse-customer-key must decode to 32 bytes, got %d", len(key))
	}
	sum := md5.Sum(key)
	if want := base64.StdEncoding.EncodeToString(sum[:]); c.SSECustomerKeyMD5 == "" {
		c.SSECustomerKeyMD5 = want
	} else if c.SSECustomerKeyMD5 != want {
		return be.Errorf("sse-customer-key-md5 does not match the key")
	}
	if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err == nil && u.Scheme == "http" && !litestream.IsLocalEndpoint(c.Endpoint) {
			return be.Errorf("SSE-C over plain http is only allowed to local endpoints, not %s", c.Endpoint)
		}
	}
	return nil
}

func (c *ReplicaClient) applySSEToPut(in *s3.PutObjectInput) {
	switch {
	case c.SSECustomerKey != "":
		in.SSECustomerAlgorithm = aws.String(c.SSECustomerAlgorithm)
		in.SSECustomerKey = aws.String(c.SSECustomerKey)
		in.SSECustomerKeyMD5 = aws.String(c.SSECustomerKeyMD5)
	case c.SSEKMSKeyID != "":
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		in.SSEKMSKeyId = aws.String(c.SSEKMSKeyID)
	}
}

func (c *ReplicaClient) applySSECToGet(in *s3.GetObjectInput) {
	if c.SSECustomerKey != "" {
		in.SSECustomerAlgorithm = aws.String(c.SSECustomerAlgorithm)
		in.SSECustomerKey = aws.String(c.SSECustomerKey)
		in.SSECustomerKeyMD5 = aws.String(c.SSECustomerKeyMD5)
	}
}

func (c *ReplicaClient) applySSECToHead(in *s3.HeadObjectInput) {
	if c.SSECustomerKey != "" {
		in.SSECustomerAlgorithm = aws.String(c.SSECustomerAlgorithm)
		in.SSECustomerKey = aws.String(c.SSECustomerKey)
		in.SSECustomerKeyMD5 = aws.String(c.SSECustomerKeyMD5)
	}
}
