package scaler

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// KubernetesConfig locates the brokers' workload and the API server.
type KubernetesConfig struct {
	// APIServer is the API server's base URL; empty uses the in-cluster
	// address (https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT).
	APIServer string
	Namespace string
	// Kind is "statefulsets" (recommended: stable broker ids = ordinal+1)
	// or "deployments".
	Kind string
	Name string
	// TokenFile and CAFile default to the pod's service-account files.
	TokenFile string
	CAFile    string
}

// DefaultKubernetesConfig returns the defaults the flags start from.
func DefaultKubernetesConfig() KubernetesConfig {
	return KubernetesConfig{Kind: "statefulsets"}
}

// RegisterFlags registers the --k8s-* flags with the defaults of
// DefaultKubernetesConfig.
func (c *KubernetesConfig) RegisterFlags(fs *pflag.FlagSet) {
	d := DefaultKubernetesConfig()
	fs.StringVar(&c.APIServer, "k8s-api-server", d.APIServer, "Kubernetes API server URL (default: in-cluster)")
	fs.StringVar(&c.Namespace, "k8s-namespace", d.Namespace, "namespace of the brokers' workload")
	fs.StringVar(&c.Kind, "k8s-kind", d.Kind, "the brokers' workload kind: statefulsets (broker id = ordinal+1) or deployments")
	fs.StringVar(&c.Name, "k8s-name", d.Name, "name of the brokers' StatefulSet or Deployment")
	fs.StringVar(&c.TokenFile, "k8s-token-file", d.TokenFile, "bearer token file (default in a cluster: the pod's service-account token)")
	fs.StringVar(&c.CAFile, "k8s-ca-file", d.CAFile, "CA certificate of the API server (default in a cluster: the service account's)")
}

// Validate checks the configuration, naming the flag of a bad value.
func (c KubernetesConfig) Validate() error {
	if c.Kind != "statefulsets" && c.Kind != "deployments" {
		return fmt.Errorf("scaler: --k8s-kind %q is neither statefulsets nor deployments", c.Kind)
	}
	if c.Name == "" || c.Namespace == "" {
		return fmt.Errorf("scaler: the brokers' %s needs a name and a namespace (--k8s-name, --k8s-namespace)", c.Kind)
	}
	return nil
}

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount/"

// Kubernetes scales a StatefulSet or Deployment with the scale
// subresource: GET and PATCH (merge patch of spec.replicas) on
// /apis/apps/v1/namespaces/NS/KIND/NAME/scale.
type Kubernetes struct {
	cfg    KubernetesConfig
	client *http.Client
}

// NewKubernetes checks cfg and prepares a client. client may be nil (one
// is built with the CA file, if any).
func NewKubernetes(cfg KubernetesConfig, client *http.Client) (*Kubernetes, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.APIServer == "" {
		host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if host == "" {
			return nil, fmt.Errorf("scaler: no API server given and not running in a cluster")
		}
		cfg.APIServer = "https://" + host + ":" + port
		if cfg.TokenFile == "" {
			cfg.TokenFile = saDir + "token"
		}
		if cfg.CAFile == "" {
			cfg.CAFile = saDir + "ca.crt"
		}
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("scaler: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("scaler: no certificates in %s", cfg.CAFile)
			}
			client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
		}
	}
	return &Kubernetes{cfg: cfg, client: client}, nil
}

func (k *Kubernetes) url() string {
	return strings.TrimSuffix(k.cfg.APIServer, "/") + "/apis/apps/v1/namespaces/" + url.PathEscape(k.cfg.Namespace) +
		"/" + k.cfg.Kind + "/" + url.PathEscape(k.cfg.Name) + "/scale"
}

// scale is the autoscaling/v1 Scale object, as far as we use it.
type scale struct {
	Spec struct {
		Replicas int `json:"replicas"`
	} `json:"spec"`
	Status struct {
		Replicas int `json:"replicas"`
	} `json:"status"`
}

func (k *Kubernetes) do(ctx context.Context, method string, body []byte) (scale, error) {
	var s scale
	req, err := http.NewRequestWithContext(ctx, method, k.url(), bytes.NewReader(body))
	if err != nil {
		return s, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/merge-patch+json")
	}
	if k.cfg.TokenFile != "" {
		// Re-read every time: projected service-account tokens rotate.
		tok, err := os.ReadFile(k.cfg.TokenFile)
		if err != nil {
			return s, fmt.Errorf("scaler: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return s, fmt.Errorf("scaler: %s %s: %w", method, k.cfg.Name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		// The API server answers with a Status object; its message says why.
		var st struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(b, &st)
		return s, fmt.Errorf("scaler: %s %s/%s scale: %s: %s", method, k.cfg.Kind, k.cfg.Name, resp.Status, st.Message)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("scaler: decoding the Scale object: %w", err)
	}
	return s, nil
}

// Size returns the workload's desired replicas.
func (k *Kubernetes) Size(ctx context.Context) (int, error) {
	s, err := k.do(ctx, http.MethodGet, nil)
	return s.Spec.Replicas, err
}

// Scale sets the workload's replicas to n.
func (k *Kubernetes) Scale(ctx context.Context, n int) error {
	if n < 0 {
		return fmt.Errorf("%w: %d", ErrRange, n)
	}
	body, _ := json.Marshal(map[string]any{"spec": map[string]int{"replicas": n}})
	_, err := k.do(ctx, http.MethodPatch, body)
	return err
}
