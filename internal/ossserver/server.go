// Package ossserver is an Alibaba Cloud OSS protocol test server: an
// http.Handler speaking the REST subset the v1 Go SDK
// (github.com/aliyun/aliyun-oss-go-sdk/oss) uses for replication, with
// path-style addressing (http://127.0.0.1:port/bucket/key, which the SDK
// picks for IP endpoints).
//
// Supported: PUT bucket; PUT/GET/HEAD/DELETE object with x-oss-meta-*
// metadata, ranges (standard behaviour, 416 InvalidRange) and the
// x-oss-hash-crc64ecma header; ListObjectsV2 with prefix, max-keys,
// start-after, continuation-token and encoding-type=url; multi-object delete
// with a Content-MD5 check; multipart uploads (initiate, upload part,
// complete, abort). Errors are OSS XML documents (for HEAD, base64 in the
// x-oss-err header).
//
// Every request must carry a valid OSS V1 signature
// (Authorization: OSS <AccessKeyId>:<base64 HMAC-SHA1>); a wrong secret gives
// 403 SignatureDoesNotMatch, an unknown key 403 InvalidAccessKeyId. V4 and
// presigned URLs are not supported.
//
// Object bodies are stored as files in a directory, so memory stays bounded
// by request metadata.
package ossserver

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash/crc64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is the OSS handler. Create it with New.
type Server struct {
	accessKeyID     string
	accessKeySecret string
	dir             string

	mu      sync.Mutex // guards buckets and uploads
	buckets map[string]map[string]*object
	uploads map[string]*upload
}

type object struct {
	file    string // body file in dir
	size    int64
	etag    string // upper-case hex MD5 (quoted on the wire)
	crc     uint64
	modTime time.Time
	meta    http.Header // x-oss-meta-* headers
	ctype   string
}

type upload struct {
	bucket, key string
	meta        http.Header
	ctype       string
	parts       map[int]*object
}

var crcTable = crc64.MakeTable(crc64.ECMA)

// New returns a server storing bodies under dir and accepting one key pair.
func New(dir, accessKeyID, accessKeySecret string) *Server {
	return &Server{
		accessKeyID:     accessKeyID,
		accessKeySecret: accessKeySecret,
		dir:             dir,
		buckets:         make(map[string]map[string]*object),
		uploads:         make(map[string]*upload),
	}
}

// Start serves a new Server on a free 127.0.0.1 port for the test's
// duration and returns its endpoint and credentials.
func Start(t testing.TB) (endpoint, accessKeyID, accessKeySecret string) {
	t.Helper()
	accessKeyID, accessKeySecret = "test-access-key", "test-secret-"+randHex(8)
	ts := httptest.NewServer(New(t.TempDir(), accessKeyID, accessKeySecret))
	t.Cleanup(ts.Close)
	return ts.URL, accessKeyID, accessKeySecret
}

// ServeHTTP authenticates the request and dispatches it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if code, msg := s.authenticate(r, bucket, key); code != "" {
		writeError(w, r, http.StatusForbidden, code, msg)
		return
	}
	q := r.URL.Query()

	if bucket == "" {
		writeError(w, r, http.StatusBadRequest, "InvalidBucketName", "bucket name required")
		return
	}
	if key == "" {
		switch {
		case r.Method == http.MethodPut:
			s.putBucket(w, bucket)
		case r.Method == http.MethodGet && q.Get("list-type") == "2":
			s.listObjectsV2(w, r, bucket, q)
		case r.Method == http.MethodPost && q.Has("delete"):
			s.deleteObjects(w, r, bucket, q)
		default:
			writeError(w, r, http.StatusNotImplemented, "NotImplemented", r.Method+" bucket operation not supported")
		}
		return
	}

	// As OSS: an object name must not start with "/" or "\".
	if strings.HasPrefix(key, "/") || strings.HasPrefix(key, `\`) {
		writeError(w, r, http.StatusBadRequest, "InvalidObjectName", "The specified object is not valid.")
		return
	}

	switch {
	case r.Method == http.MethodPost && q.Has("uploads"):
		s.initiateUpload(w, r, bucket, key)
	case r.Method == http.MethodPut && q.Has("uploadId"):
		s.uploadPart(w, r, q)
	case r.Method == http.MethodPost && q.Has("uploadId"):
		s.completeUpload(w, r, bucket, key, q)
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		s.abortUpload(w, r, q)
	case r.Method == http.MethodPut:
		s.putObject(w, r, bucket, key)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		s.getObject(w, r, bucket, key)
	case r.Method == http.MethodDelete:
		s.deleteObject(w, r, bucket, key)
	default:
		writeError(w, r, http.StatusNotImplemented, "NotImplemented", r.Method+" object operation not supported")
	}
}

// signedSubResources are the query parameters included in a V1 signature
// (the subset of the SDK's list that this server's operations use, plus
// common ones).
var signedSubResources = map[string]bool{
	"acl": true, "uploads": true, "location": true, "delete": true, "append": true,
	"tagging": true, "objectMeta": true, "uploadId": true, "partNumber": true,
	"security-token": true, "position": true, "continuation-token": true,
	"response-content-type": true, "response-content-language": true,
	"response-expires": true, "response-cache-control": true,
	"response-content-disposition": true, "response-content-encoding": true,
	"versionId": true, "versions": true, "x-oss-process": true, "symlink": true,
	"restore": true, "sequential": true, "stat": true, "comp": true,
}

// authenticate checks the V1 signature and returns an OSS error code and
// message when it fails.
func (s *Server) authenticate(r *http.Request, bucket, key string) (code, msg string) {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "OSS ")
	if !ok {
		return "AccessDenied", "only OSS V1 signatures (Authorization: OSS ak:sig) are supported"
	}
	ak, sig, ok := strings.Cut(rest, ":")
	if !ok {
		return "InvalidArgument", "malformed Authorization header"
	}
	if ak != s.accessKeyID {
		return "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records."
	}
	want := SignV1(s.accessKeySecret, r, bucket, key)
	if subtle.ConstantTimeCompare([]byte(sig), []byte(want)) != 1 {
		return "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."
	}
	return "", ""
}

// SignV1 computes the OSS V1 signature of r:
// base64(HMAC-SHA1(secret, VERB\nContent-MD5\nContent-Type\nDate\n
// CanonicalizedOSSHeaders CanonicalizedResource)).
func SignV1(secret string, r *http.Request, bucket, key string) string {
	var ossKeys []string
	ossHeaders := map[string]string{}
	for k, v := range r.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-oss-") {
			ossKeys = append(ossKeys, lk)
			ossHeaders[lk] = v[0]
		}
	}
	sort.Strings(ossKeys)
	var canonHeaders strings.Builder
	for _, k := range ossKeys {
		canonHeaders.WriteString(k + ":" + ossHeaders[k] + "\n")
	}

	q := r.URL.Query()
	var subKeys []string
	for k := range q {
		if signedSubResources[k] {
			subKeys = append(subKeys, k)
		}
	}
	sort.Strings(subKeys)
	var sub strings.Builder
	for _, k := range subKeys {
		if sub.Len() > 0 {
			sub.WriteByte('&')
		}
		sub.WriteString(k)
		if v := q.Get(k); v != "" {
			sub.WriteString("=" + v)
		}
	}
	resource := "/" + bucket + "/" + key
	if bucket == "" {
		resource = "/"
	}
	if sub.Len() > 0 {
		resource += "?" + sub.String()
	}

	toSign := r.Method + "\n" + r.Header.Get("Content-MD5") + "\n" + r.Header.Get("Content-Type") + "\n" +
		r.Header.Get("Date") + "\n" + canonHeaders.String() + resource
	h := hmac.New(sha1.New, []byte(secret))
	_, _ = io.WriteString(h, toSign)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func (s *Server) putBucket(w http.ResponseWriter, bucket string) {
	s.mu.Lock()
	if _, ok := s.buckets[bucket]; !ok {
		s.buckets[bucket] = make(map[string]*object)
	}
	s.mu.Unlock()
	w.Header().Set("x-oss-request-id", randHex(12))
	w.WriteHeader(http.StatusOK)
}

// storeBody writes the request body to a new file, hashing it.
func (s *Server) storeBody(r io.Reader) (*object, error) {
	f, err := os.CreateTemp(s.dir, "obj-*")
	if err != nil {
		return nil, err
	}
	m, c := md5.New(), crc64.New(crcTable)
	n, err := io.Copy(io.MultiWriter(f, m, c), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return nil, err
	}
	return &object{
		file: f.Name(), size: n, etag: strings.ToUpper(hex.EncodeToString(m.Sum(nil))),
		crc: c.Sum64(), modTime: time.Now().UTC(),
	}, nil
}

func metaHeaders(h http.Header) http.Header {
	meta := http.Header{}
	for k, v := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-oss-meta-") {
			meta[k] = v
		}
	}
	return meta
}

func (s *Server) putObject(w http.ResponseWriter, r *http.Request, bucket, key string) {
	if !s.bucketExists(bucket) {
		writeError(w, r, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist.")
		return
	}
	obj, err := s.storeBody(r.Body)
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	if want := r.Header.Get("Content-MD5"); want != "" && want != md5Base64(obj.etag) {
		_ = os.Remove(obj.file)
		writeError(w, r, http.StatusBadRequest, "InvalidDigest", "The Content-MD5 you specified is not valid.")
		return
	}
	obj.meta, obj.ctype = metaHeaders(r.Header), r.Header.Get("Content-Type")
	s.replace(bucket, key, obj)
	writeObjectHeaders(w, obj, true)
	w.WriteHeader(http.StatusOK)
}

// replace installs obj under key, removing the old body file.
func (s *Server) replace(bucket, key string, obj *object) {
	s.mu.Lock()
	old := s.buckets[bucket][key]
	s.buckets[bucket][key] = obj
	s.mu.Unlock()
	if old != nil {
		_ = os.Remove(old.file)
	}
}

func (s *Server) bucketExists(bucket string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.buckets[bucket]
	return ok
}

func writeObjectHeaders(w http.ResponseWriter, obj *object, full bool) {
	h := w.Header()
	h.Set("ETag", `"`+obj.etag+`"`)
	h.Set("x-oss-request-id", randHex(12))
	if full {
		h.Set("x-oss-hash-crc64ecma", strconv.FormatUint(obj.crc, 10))
	}
}

func (s *Server) getObject(w http.ResponseWriter, r *http.Request, bucket, key string) {
	s.mu.Lock()
	objects, bucketOK := s.buckets[bucket]
	obj := objects[key]
	var f *os.File
	var err error
	if obj != nil {
		f, err = os.Open(obj.file) // opened under the lock: a replace cannot remove it first
	}
	s.mu.Unlock()
	if !bucketOK {
		writeError(w, r, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist.")
		return
	} else if obj == nil {
		writeError(w, r, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	} else if err != nil {
		writeError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	defer func() { _ = f.Close() }()

	h := w.Header()
	for k, v := range obj.meta {
		h[k] = v
	}
	h.Set("Last-Modified", obj.modTime.Format(http.TimeFormat))
	h.Set("Content-Type", obj.ctype)
	h.Set("x-oss-object-type", "Normal")

	start, end := int64(0), obj.size-1
	status := http.StatusOK
	if rng := r.Header.Get("Range"); rng != "" {
		var ok bool
		if start, end, ok = parseRange(rng, obj.size); !ok {
			writeError(w, r, http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The requested range cannot be satisfied.")
			return
		}
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, obj.size))
	}
	writeObjectHeaders(w, obj, status == http.StatusOK)
	h.Set("Content-Length", strconv.FormatInt(end-start+1, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.Copy(w, io.NewSectionReader(f, start, end-start+1))
}

// parseRange parses "bytes=a-b" or "bytes=a-" with standard behaviour.
func parseRange(s string, size int64) (start, end int64, ok bool) {
	spec, ok := strings.CutPrefix(s, "bytes=")
	if !ok {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok || a == "" {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 || start >= size {
		return 0, 0, false
	}
	end = size - 1
	if b != "" {
		if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < start {
			return 0, 0, false
		}
		end = min(end, size-1)
	}
	return start, end, true
}

func (s *Server) deleteObject(w http.ResponseWriter, r *http.Request, bucket, key string) {
	if !s.bucketExists(bucket) {
		writeError(w, r, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist.")
		return
	}
	s.remove(bucket, key)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) remove(bucket, key string) {
	s.mu.Lock()
	obj := s.buckets[bucket][key]
	delete(s.buckets[bucket], key)
	s.mu.Unlock()
	if obj != nil {
		_ = os.Remove(obj.file)
	}
}

type listResult struct {
	XMLName               xml.Name       `xml:"ListBucketResult"`
	Name                  string         `xml:"Name"`
	Prefix                string         `xml:"Prefix"`
	StartAfter            string         `xml:"StartAfter,omitempty"`
	MaxKeys               int            `xml:"MaxKeys"`
	Delimiter             string         `xml:"Delimiter"`
	IsTruncated           bool           `xml:"IsTruncated"`
	EncodingType          string         `xml:"EncodingType,omitempty"`
	KeyCount              int            `xml:"KeyCount"`
	ContinuationToken     string         `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
	Contents              []listContents `xml:"Contents"`
}

type listContents struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Type         string `xml:"Type"`
	Size         int64  `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

func (s *Server) listObjectsV2(w http.ResponseWriter, r *http.Request, bucket string, q url.Values) {
	maxKeys := 100
	if v := q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, r, http.StatusBadRequest, "InvalidArgument", "max-keys must be 1..1000")
			return
		}
		maxKeys = n
	}
	prefix := q.Get("prefix")
	after := q.Get("start-after")
	if tok := q.Get("continuation-token"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			writeError(w, r, http.StatusBadRequest, "InvalidArgument", "invalid continuation-token")
			return
		}
		after = max(after, string(b))
	}
	encode := func(s string) string { return s }
	res := listResult{Name: bucket, Prefix: prefix, StartAfter: q.Get("start-after"), MaxKeys: maxKeys, ContinuationToken: q.Get("continuation-token")}
	if q.Get("encoding-type") == "url" {
		res.EncodingType = "url"
		encode = urlEncode
		res.Prefix, res.StartAfter = encode(res.Prefix), encode(res.StartAfter)
	}

	s.mu.Lock()
	objects, ok := s.buckets[bucket]
	var keys []string
	for k := range objects {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) > maxKeys {
		keys, res.IsTruncated = keys[:maxKeys], true
		res.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(keys[maxKeys-1]))
	}
	for _, k := range keys {
		obj := objects[k]
		res.Contents = append(res.Contents, listContents{
			Key: encode(k), LastModified: obj.modTime.Format("2006-01-02T15:04:05.000Z"),
			ETag: `"` + obj.etag + `"`, Type: "Normal", Size: obj.size, StorageClass: "Standard",
		})
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, r, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist.")
		return
	}
	res.KeyCount = len(res.Contents)
	writeXML(w, http.StatusOK, res)
}

// urlEncode encodes like OSS's encoding-type=url: spaces as %20, "+" as %2B.
func urlEncode(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

type deleteRequest struct {
	Quiet   bool `xml:"Quiet"`
	Objects []struct {
		Key string `xml:"Key"`
	} `xml:"Object"`
}

type deleteResult struct {
	XMLName      xml.Name `xml:"DeleteResult"`
	EncodingType string   `xml:"EncodingType,omitempty"`
	Deleted      []struct {
		Key string `xml:"Key"`
	} `xml:"Deleted"`
}

func (s *Server) deleteObjects(w http.ResponseWriter, r *http.Request, bucket string, q url.Values) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	sum := md5.Sum(body)
	if r.Header.Get("Content-MD5") != base64.StdEncoding.EncodeToString(sum[:]) {
		writeError(w, r, http.StatusBadRequest, "InvalidDigest", "The Content-MD5 you specified is not valid.")
		return
	}
	var req deleteRequest
	if err := xml.Unmarshal(body, &req); err != nil {
		writeError(w, r, http.StatusBadRequest, "MalformedXML", err.Error())
		return
	} else if len(req.Objects) > 1000 {
		writeError(w, r, http.StatusBadRequest, "MalformedXML", "too many objects in one delete (max 1000)")
		return
	}
	if !s.bucketExists(bucket) {
		writeError(w, r, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist.")
		return
	}
	var res deleteResult
	encode := func(s string) string { return s }
	if q.Get("encoding-type") == "url" {
		res.EncodingType, encode = "url", urlEncode
	}
	for _, o := range req.Objects {
		s.remove(bucket, o.Key)
		if !req.Quiet {
			res.Deleted = append(res.Deleted, struct {
				Key string `xml:"Key"`
			}{encode(o.Key)})
		}
	}
	writeXML(w, http.StatusOK, res)
}

func (s *Server) initiateUpload(w http.ResponseWriter, r *http.Request, bucket, key string) {
	if !s.bucketExists(bucket) {
		writeError(w, r, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist.")
		return
	}
	id := randHex(16)
	s.mu.Lock()
	s.uploads[id] = &upload{bucket: bucket, key: key, meta: metaHeaders(r.Header), ctype: r.Header.Get("Content-Type"), parts: map[int]*object{}}
	s.mu.Unlock()
	writeXML(w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
		Bucket   string   `xml:"Bucket"`
		Key      string   `xml:"Key"`
		UploadID string   `xml:"UploadId"`
	}{Bucket: bucket, Key: key, UploadID: id})
}

func (s *Server) uploadPart(w http.ResponseWriter, r *http.Request, q url.Values) {
	n, err := strconv.Atoi(q.Get("partNumber"))
	if err != nil || n < 1 || n > 10000 {
		writeError(w, r, http.StatusBadRequest, "InvalidArgument", "partNumber must be 1..10000")
		return
	}
	s.mu.Lock()
	up := s.uploads[q.Get("uploadId")]
	s.mu.Unlock()
	if up == nil {
		writeError(w, r, http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist.")
		return
	}
	part, err := s.storeBody(r.Body)
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	s.mu.Lock()
	old := up.parts[n]
	up.parts[n] = part
	s.mu.Unlock()
	if old != nil {
		_ = os.Remove(old.file)
	}
	writeObjectHeaders(w, part, true)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) completeUpload(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values) {
	var req struct {
		Parts []struct {
			PartNumber int    `xml:"PartNumber"`
			ETag       string `xml:"ETag"`
		} `xml:"Part"`
	}
	if err := xml.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&req); err != nil {
		writeError(w, r, http.StatusBadRequest, "MalformedXML", err.Error())
		return
	}
	id := q.Get("uploadId")
	s.mu.Lock()
	up := s.uploads[id]
	s.mu.Unlock()
	if up == nil || up.bucket != bucket || up.key != key {
		writeError(w, r, http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist.")
		return
	}

	var readers []io.Reader
	var files []*os.File
	defer func() {
		for _, f := range files {
			_ = f.Close()
		}
	}()
	prev := 0
	for _, p := range req.Parts {
		part := up.parts[p.PartNumber]
		if part == nil || strings.Trim(p.ETag, `"`) != part.etag {
			writeError(w, r, http.StatusBadRequest, "InvalidPart", fmt.Sprintf("part %d not uploaded or ETag mismatch", p.PartNumber))
			return
		} else if p.PartNumber <= prev {
			writeError(w, r, http.StatusBadRequest, "InvalidPartOrder", "parts must be in ascending order")
			return
		}
		prev = p.PartNumber
		f, err := os.Open(part.file)
		if err != nil {
			writeError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
			return
		}
		files = append(files, f)
		readers = append(readers, f)
	}
	obj, err := s.storeBody(io.MultiReader(readers...))
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	obj.meta, obj.ctype = up.meta, up.ctype
	obj.etag += fmt.Sprintf("-%d", len(req.Parts))
	s.finishUpload(id)
	s.replace(bucket, key, obj)

	writeObjectHeaders(w, obj, true)
	writeXML(w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
		Location string   `xml:"Location"`
		Bucket   string   `xml:"Bucket"`
		Key      string   `xml:"Key"`
		ETag     string   `xml:"ETag"`
	}{Location: "/" + bucket + "/" + key, Bucket: bucket, Key: key, ETag: `"` + obj.etag + `"`})
}

func (s *Server) abortUpload(w http.ResponseWriter, r *http.Request, q url.Values) {
	if !s.finishUpload(q.Get("uploadId")) {
		writeError(w, r, http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist.")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// finishUpload forgets an upload and removes its part files.
func (s *Server) finishUpload(id string) bool {
	s.mu.Lock()
	up := s.uploads[id]
	delete(s.uploads, id)
	s.mu.Unlock()
	if up == nil {
		return false
	}
	for _, p := range up.parts {
		_ = os.Remove(p.file)
	}
	return true
}

type errorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	RequestID string   `xml:"RequestId"`
	HostID    string   `xml:"HostId"`
}

// writeError sends an OSS error document; HEAD responses carry it base64
// encoded in x-oss-err instead of a body.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	reqID := randHex(12)
	b, _ := xml.Marshal(errorBody{Code: code, Message: msg, RequestID: reqID, HostID: r.Host})
	b = append([]byte(xml.Header), b...)
	w.Header().Set("x-oss-request-id", reqID)
	w.Header().Set("x-oss-ec", "0000-00000000")
	if r.Method == http.MethodHead {
		w.Header().Set("x-oss-err", base64.StdEncoding.EncodeToString(b))
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	b = append([]byte(xml.Header), b...)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if w.Header().Get("x-oss-request-id") == "" {
		w.Header().Set("x-oss-request-id", randHex(12))
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// md5Base64 converts an upper-case hex MD5 to base64.
func md5Base64(hexSum string) string {
	b, _ := hex.DecodeString(hexSum)
	return base64.StdEncoding.EncodeToString(b)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

var _ http.Handler = (*Server)(nil)
