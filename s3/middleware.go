// SDK middleware that makes S3-compatible services work.

package s3

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/benbjohnson/litestream"
)

// middleware returns the stack changes that make the SDK work with
// S3-compatible services, mirroring upstream's settings.
func (c *ReplicaClient) middleware() []func(*middleware.Stack) error {
	opts := []func(*middleware.Stack) error{awsmiddleware.AddUserAgentKey("litestream")}
	if !c.SignPayload {
		opts = append(opts, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	}
	if !c.SignPayload || c.Endpoint != "" {
		// aws-chunked trailers are unsupported by most S3-compatibles.
		opts = append(opts, func(s *middleware.Stack) error {
			_, _ = s.Finalize.Remove("addInputChecksumTrailer")
			return nil
		})
	}
	if c.RequireContentMD5 {
		opts = append(opts, addDeleteObjectsContentMD5)
	}
	if c.Endpoint != "" && litestream.IsTigrisEndpoint(c.Endpoint) {
		opts = append(opts, addHeader("X-Tigris-Consistent", "true"))
	}
	if c.Endpoint != "" && litestream.IsGoogleCloudStorageEndpoint(c.Endpoint) {
		opts = append(opts, removeAcceptEncodingBeforeSigning)
	}
	return opts
}

// addDeleteObjectsContentMD5 sets Content-MD5 on DeleteObjects requests,
// which several S3-compatible services require, hashing the serialised body.
func addDeleteObjectsContentMD5(s *middleware.Stack) error {
	mw := middleware.FinalizeMiddlewareFunc("LitestreamDeleteObjectsContentMD5", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		if middleware.GetOperationName(ctx) != "DeleteObjects" {
			return next.HandleFinalize(ctx, in)
		}
		req, ok := in.Request.(*smithyhttp.Request)
		if !ok || req.Header.Get("Content-MD5") != "" {
			return next.HandleFinalize(ctx, in)
		}
		if stream := req.GetStream(); stream != nil {
			h := md5.New()
			if _, err := io.Copy(h, stream); err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("hash delete request body: %w", err)
			}
			if err := req.RewindStream(); err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("rewind delete request body: %w", err)
			}
			req.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString(h.Sum(nil)))
		}
		return next.HandleFinalize(ctx, in)
	})
	if _, ok := s.Finalize.Get("AWSChecksum:ComputeInputPayloadChecksum"); ok {
		return s.Finalize.Insert(mw, "AWSChecksum:ComputeInputPayloadChecksum", middleware.Before)
	}
	return s.Finalize.Add(mw, middleware.Before)
}

// addHeader sets a header on every request.
func addHeader(key, value string) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Build.Add(middleware.BuildMiddlewareFunc("LitestreamHeader"+key, func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
			if req, ok := in.Request.(*smithyhttp.Request); ok {
				req.Header.Set(key, value)
			}
			return next.HandleBuild(ctx, in)
		}), middleware.After)
	}
}

// removeAcceptEncodingBeforeSigning drops Accept-Encoding, which the GCS XML
// API rewrites and so breaks SigV4 signatures.
func removeAcceptEncodingBeforeSigning(s *middleware.Stack) error {
	mw := middleware.FinalizeMiddlewareFunc("LitestreamRemoveAcceptEncoding", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		if req, ok := in.Request.(*smithyhttp.Request); ok {
			req.Header.Del("Accept-Encoding")
		}
		return next.HandleFinalize(ctx, in)
	})
	if _, ok := s.Finalize.Get("Signing"); ok {
		return s.Finalize.Insert(mw, "Signing", middleware.Before)
	}
	return s.Finalize.Add(mw, middleware.After)
}
