// Package s3bucket implements bucket.Bucket on Amazon S3 or any
// S3-compatible service (MinIO, Ceph RGW, R2, versitygw, moto ...), using
// aws-sdk-go-v2.
//
// Each key is one S3 object in Config.Bucket, under the same name. The
// mapping of the contract onto S3:
//
//   - Put is a single PutObject, which S3 makes atomic; no multipart
//     upload, so objects are limited to 5 GiB (Eddy's are far smaller).
//   - GetRange sends "Range: bytes=off-(off+n-1)". S3 answers a range that
//     starts inside the object but ends past it with a short 206 rather
//     than an error, so the driver checks the returned Content-Range and
//     length and reports bucket.ErrRange itself; 416 and InvalidRange map
//     to ErrRange too. n == 0 is a HeadObject.
//   - NoSuchKey and 404 map to bucket.ErrNotFound, except NoSuchBucket,
//     which is a configuration error and is returned as is.
//   - List is ListObjectsV2, which S3 returns in UTF-8 byte order; keys
//     that are not valid bucket keys (console "folder" markers, foreign
//     objects) are skipped.
//
// Failed requests are retried by the SDK's standard retryer (every
// operation here is idempotent), with its default of 3 attempts and
// exponential backoff. Errors keep the SDK error wrapped, so errors.As
// still reaches smithy.APIError.
//
// A Bucket is safe for concurrent use.
package s3bucket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/spf13/pflag"

	"github.com/eddy-streams/eddy/tiered/bucket"
)

// ErrConfig is wrapped by every error from Config.Validate.
var ErrConfig = errors.New("s3bucket: invalid config")

// DefaultRegion is used when neither Config.Region nor the AWS environment
// names one. S3-compatible services generally expect it.
const DefaultRegion = "us-east-1"

// Config says where the bucket is and how to authenticate.
type Config struct {
	// Endpoint is the service's base URL, such as "http://127.0.0.1:9000".
	// Empty means AWS S3, with the endpoint derived from Region.
	Endpoint string
	// Region to sign requests for. Empty means the AWS environment's
	// (AWS_REGION, the shared config file), else DefaultRegion.
	Region string
	// Bucket is the name of an existing bucket.
	Bucket string
	// AccessKey and SecretKey are static credentials. Leave both empty to
	// use the default AWS credential chain (environment, shared files, web
	// identity, ECS/EC2 roles).
	AccessKey string
	SecretKey string
	// PathStyle addresses the bucket as ENDPOINT/BUCKET/KEY rather than
	// BUCKET.ENDPOINT/KEY; most self-hosted services need it.
	PathStyle bool
}

// RegisterFlags registers the --s3-* flags, with their defaults, on fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Endpoint, "s3-endpoint", "", "S3-compatible endpoint URL (empty: AWS S3)")
	fs.StringVar(&c.Region, "s3-region", "", "S3 region (empty: from AWS_REGION or the AWS config file, else "+DefaultRegion+")")
	fs.StringVar(&c.Bucket, "s3-bucket", "", "S3 bucket holding all data (required)")
	fs.StringVar(&c.AccessKey, "s3-access-key", "", "S3 access key ID (empty: default AWS credential chain)")
	fs.StringVar(&c.SecretKey, "s3-secret-key", "", "S3 secret access key (empty: default AWS credential chain)")
	fs.BoolVar(&c.PathStyle, "s3-path-style", false, "use path-style addressing (ENDPOINT/BUCKET/KEY), needed by most self-hosted services")
}

// bucketName is S3's rule for general-purpose bucket names.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Validate reports the first problem with c, wrapping ErrConfig.
func (c *Config) Validate() error {
	switch {
	case c.Bucket == "":
		return fmt.Errorf("%w: no bucket (--s3-bucket)", ErrConfig)
	case !bucketName.MatchString(c.Bucket):
		return fmt.Errorf("%w: bucket name %q: want 3-63 lower-case letters, digits, '.' and '-'", ErrConfig, c.Bucket)
	case (c.AccessKey == "") != (c.SecretKey == ""):
		return fmt.Errorf("%w: set both --s3-access-key and --s3-secret-key, or neither", ErrConfig)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil {
			return fmt.Errorf("%w: endpoint: %w", ErrConfig, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: endpoint %q: want http://host[:port] or https://host[:port]", ErrConfig, c.Endpoint)
		}
	}
	return nil
}

// Bucket is a bucket.Bucket on one S3 bucket.
type Bucket struct {
	client *s3.Client
	name   string
}

var _ bucket.Bucket = (*Bucket)(nil)

// New validates cfg and returns a Bucket. It makes no request: a wrong
// endpoint, bucket or credential shows on first use.
func New(ctx context.Context, cfg Config) (*Bucket, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3bucket: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = DefaultRegion
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// Ranged GETs, and many S3-compatible services, return no checksum
		// to validate; that is expected, not worth a log line per request.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return &Bucket{client: client, name: cfg.Bucket}, nil
}

// Name returns the S3 bucket's name.
func (b *Bucket) Name() string { return b.name }

// CreateBucketIfMissing creates the bucket unless it exists. It is meant for
// development and tests; production buckets are provisioned separately.
func (b *Bucket) CreateBucketIfMissing(ctx context.Context) error {
	_, err := b.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &b.name})
	if err == nil {
		return nil
	}
	if httpStatus(err) != 404 {
		return fmt.Errorf("s3bucket: head bucket %q: %w", b.name, err)
	}
	in := &s3.CreateBucketInput{Bucket: &b.name}
	if region := b.client.Options().Region; region != DefaultRegion {
		// us-east-1 is the one region that must not be named here.
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(region),
		}
	}
	_, err = b.client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("s3bucket: create bucket %q: %w", b.name, err)
	}
	return nil
}

// httpStatus returns the HTTP status of a failed request, or 0.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// wrap translates err from the SDK into the bucket contract's sentinels,
// keeping the SDK error in the chain.
func (b *Bucket) wrap(op, key string, err error) error {
	code := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	switch status := httpStatus(err); {
	case code == "NoSuchBucket":
		// A missing bucket is not a missing object.
	case code == "NoSuchKey" || code == "NotFound" || status == 404:
		return fmt.Errorf("s3bucket: %s %q: %w (%w)", op, key, bucket.ErrNotFound, err)
	case code == "InvalidRange" || status == 416:
		return fmt.Errorf("s3bucket: %s %q: %w (%w)", op, key, bucket.ErrRange, err)
	}
	return fmt.Errorf("s3bucket: %s %q: %w", op, key, err)
}

func validKey(op, key string) error {
	if err := bucket.ValidKey(key); err != nil {
		return fmt.Errorf("s3bucket: %s: %w", op, err)
	}
	return nil
}

// Put implements bucket.Bucket.
func (b *Bucket) Put(ctx context.Context, key string, data []byte) error {
	if err := validKey("put", key); err != nil {
		return err
	}
	_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &b.name,
		Key:           &key,
		Body:          bytes.NewReader(data), // seekable, so the retryer can resend it
		ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return b.wrap("put", key, err)
	}
	return nil
}

// Get implements bucket.Bucket.
func (b *Bucket) Get(ctx context.Context, key string) ([]byte, error) {
	if err := validKey("get", key); err != nil {
		return nil, err
	}
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.name, Key: &key})
	if err != nil {
		return nil, b.wrap("get", key, err)
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if n := aws.ToInt64(out.ContentLength); n > 0 {
		buf.Grow(int(n))
	}
	if _, err := buf.ReadFrom(out.Body); err != nil {
		return nil, b.wrap("get", key, err)
	}
	if n := out.ContentLength; n != nil && *n != int64(buf.Len()) {
		return nil, fmt.Errorf("s3bucket: get %q: read %d bytes, Content-Length was %d: %w", key, buf.Len(), *n, io.ErrUnexpectedEOF)
	}
	return buf.Bytes(), nil
}

// GetRange implements bucket.Bucket.
func (b *Bucket) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := validKey("get range", key); err != nil {
		return nil, err
	}
	if off < 0 || n < 0 || off > (1<<63-1)-n {
		return nil, fmt.Errorf("s3bucket: get range %q [%d, +%d): %w", key, off, n, bucket.ErrRange)
	}
	if n == 0 {
		// "bytes=off-(off-1)" is not a range: ask for the size instead.
		out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.name, Key: &key})
		if err != nil {
			return nil, b.wrap("get range", key, err)
		}
		if size := aws.ToInt64(out.ContentLength); off > size {
			return nil, fmt.Errorf("s3bucket: get range %q [%d, +0) of %d bytes: %w", key, off, size, bucket.ErrRange)
		}
		return []byte{}, nil
	}
	rng := fmt.Sprintf("bytes=%d-%d", off, off+n-1)
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.name, Key: &key, Range: &rng})
	if err != nil {
		return nil, b.wrap("get range", key, err)
	}
	defer out.Body.Close()
	// A range running past the end comes back short, and a server that
	// ignores Range sends the whole object: accept only exactly our range.
	wantCR := fmt.Sprintf("bytes %d-%d/", off, off+n-1)
	cr := aws.ToString(out.ContentRange)
	if (cr == "" && off != 0) || (cr != "" && (len(cr) < len(wantCR) || cr[:len(wantCR)] != wantCR)) ||
		(out.ContentLength != nil && *out.ContentLength != n) {
		return nil, fmt.Errorf("s3bucket: get range %q [%d, +%d): server sent %q, %d bytes: %w",
			key, off, n, cr, aws.ToInt64(out.ContentLength), bucket.ErrRange)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(out.Body, buf); err != nil {
		return nil, b.wrap("get range", key, err)
	}
	return buf, nil
}

// Delete implements bucket.Bucket. S3 itself treats deleting a missing key
// as success; some compatible services answer NoSuchKey, which is mapped
// to success too.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := validKey("delete", key); err != nil {
		return err
	}
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.name, Key: &key})
	if err != nil {
		if err := b.wrap("delete", key, err); !bucket.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// List implements bucket.Bucket.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(bucket.Object) error) error {
	if err := bucket.ValidPrefix(prefix); err != nil {
		return fmt.Errorf("s3bucket: list: %w", err)
	}
	pages := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket: &b.name,
		Prefix: aws.String(prefix),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return b.wrap("list", prefix, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if bucket.ValidKey(key) != nil {
				continue
			}
			err := fn(bucket.Object{Key: key, Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)})
			if err != nil {
				return err
			}
		}
	}
	return nil
}
