package s3bucket

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/spf13/pflag"

	"github.com/eddy-streams/eddy/internal/s3test"
	"github.com/eddy-streams/eddy/tiered/bucket"
	"github.com/eddy-streams/eddy/tiered/buckettest"
)

// server is an S3-compatible server for one top-level test.
type server struct{ endpoint, accessKey, secretKey string }

func startServer(t *testing.T) server {
	endpoint, ak, sk := s3test.Start(t)
	t.Logf("S3-compatible server: %s", endpoint)
	return server{endpoint, ak, sk}
}

// config returns the flag defaults pointed at the server, with a fresh
// bucket name.
func (s server) config(t *testing.T) Config {
	var cfg Config
	cfg.RegisterFlags(pflag.NewFlagSet(t.Name(), pflag.ContinueOnError))
	cfg.Endpoint = s.endpoint
	cfg.Region = s3test.Region
	cfg.AccessKey, cfg.SecretKey = s.accessKey, s.secretKey
	cfg.PathStyle = true
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	cfg.Bucket = "eddy-test-" + hex.EncodeToString(suffix)
	return cfg
}

// newBucket creates a fresh bucket and removes it, contents and all, when t
// ends (an EDDY_S3_ENDPOINT server outlives the test).
func (s server) newBucket(t *testing.T, cfg Config) *Bucket {
	t.Helper()
	b, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateBucketIfMissing(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.deleteAll(ctx); err != nil {
			t.Errorf("cleaning up bucket %s: %v", b.name, err)
		}
	})
	return b
}

// deleteAll deletes every object, then the bucket.
func (b *Bucket) deleteAll(ctx context.Context) error {
	pages := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: &b.name})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return err
		}
		if len(page.Contents) == 0 {
			continue
		}
		var ids []types.ObjectIdentifier
		for _, o := range page.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: o.Key})
		}
		out, err := b.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: &b.name,
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return err
		}
		if len(out.Errors) > 0 {
			return fmt.Errorf("deleting %s: %s", aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Message))
		}
	}
	_, err := b.client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &b.name})
	return err
}

func TestAcceptance(t *testing.T) {
	s := startServer(t)
	buckettest.Run(t, func(t *testing.T) bucket.Bucket { return s.newBucket(t, s.config(t)) })
}

func TestDefaultCredentialChain(t *testing.T) {
	s := startServer(t)
	if s.accessKey == "" {
		t.Skip("server credentials come from the environment already")
	}
	t.Setenv("AWS_ACCESS_KEY_ID", s.accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.secretKey)
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_REGION", s3test.Region)
	cfg := s.config(t)
	cfg.AccessKey, cfg.SecretKey, cfg.Region = "", "", ""
	b := s.newBucket(t, cfg)
	if err := b.Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got := b.client.Options().Region; got != s3test.Region {
		t.Errorf("region = %q, want %q from AWS_REGION", got, s3test.Region)
	}
}

func TestMissingBucket(t *testing.T) {
	s := startServer(t)
	b, err := New(t.Context(), s.config(t)) // never created
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := b.Get(ctx, "k"); err == nil || bucket.IsNotFound(err) {
		t.Errorf("Get from a missing bucket: %v; want an error other than ErrNotFound", err)
	}
	if err := b.Put(ctx, "k", []byte("v")); err == nil {
		t.Error("Put into a missing bucket succeeded")
	}
	if err := b.List(ctx, "", func(bucket.Object) error { return nil }); err == nil {
		t.Error("List of a missing bucket succeeded")
	}
}

func TestCreateBucketIfMissingTwice(t *testing.T) {
	s := startServer(t)
	b := s.newBucket(t, s.config(t))
	if err := b.CreateBucketIfMissing(t.Context()); err != nil {
		t.Fatalf("second CreateBucketIfMissing: %v", err)
	}
}

// Objects other tools leave in a bucket are invisible to List.
func TestListSkipsForeignKeys(t *testing.T) {
	s := startServer(t)
	b := s.newBucket(t, s.config(t))
	ctx := t.Context()
	for _, key := range []string{"dir/", "dir/.hidden", "dir/ok"} {
		_, err := b.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &b.name, Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	if err := b.List(ctx, "dir/", func(o bucket.Object) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "dir/ok" {
		t.Fatalf("List = %q, want [dir/ok]", keys)
	}
}

func TestConfig(t *testing.T) {
	valid := func() Config { return Config{Bucket: "eddy-data", Endpoint: "http://127.0.0.1:9000"} }
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		ok     bool
	}{
		{"valid", func(*Config) {}, true},
		{"AWS", func(c *Config) { c.Endpoint = "" }, true},
		{"static credentials", func(c *Config) { c.AccessKey, c.SecretKey = "a", "s" }, true},
		{"no bucket", func(c *Config) { c.Bucket = "" }, false},
		{"upper-case bucket", func(c *Config) { c.Bucket = "Eddy" }, false},
		{"short bucket", func(c *Config) { c.Bucket = "ab" }, false},
		{"access key only", func(c *Config) { c.AccessKey = "a" }, false},
		{"secret key only", func(c *Config) { c.SecretKey = "s" }, false},
		{"endpoint without scheme", func(c *Config) { c.Endpoint = "127.0.0.1:9000" }, false},
		{"endpoint with other scheme", func(c *Config) { c.Endpoint = "ftp://host" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid()
			tc.modify(&cfg)
			err := cfg.Validate()
			if tc.ok && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate = %v, want ErrConfig", err)
			}
		})
	}
}

func TestRegisterFlags(t *testing.T) {
	var cfg Config
	fs := pflag.NewFlagSet("eddy", pflag.ContinueOnError)
	cfg.RegisterFlags(fs)
	err := fs.Parse([]string{
		"--s3-endpoint=http://127.0.0.1:9000", "--s3-region=eu-west-1", "--s3-bucket=data",
		"--s3-access-key=ak", "--s3-secret-key=sk", "--s3-path-style",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{"http://127.0.0.1:9000", "eu-west-1", "data", "ak", "sk", true}
	if cfg != want {
		t.Fatalf("parsed %+v, want %+v", cfg, want)
	}
}
