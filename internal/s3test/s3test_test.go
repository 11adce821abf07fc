package s3test_test

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/s3test"
)

func TestStart(t *testing.T) {
	var endpoint string
	t.Run("start", func(t *testing.T) {
		endpoint, _, _ = s3test.Start(t)
		resp, err := http.Get(endpoint + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		t.Logf("S3-compatible server at %s answered %s", endpoint, resp.Status)
	})
	if t.Failed() || endpoint == "" || os.Getenv(s3test.EnvEndpoint) != "" {
		return
	}
	// The private server is gone once its test has ended.
	client := &http.Client{Timeout: time.Second}
	if resp, err := client.Get(endpoint + "/"); err == nil {
		resp.Body.Close()
		t.Fatalf("moto_server at %s still answers after its test ended", endpoint)
	}
}
