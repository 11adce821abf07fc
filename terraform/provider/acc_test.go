package provider

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/eddy-streams/eddy/api/client"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
)

// The acceptance tests run the real terraform binary against this
// provider, served in-process (terraform-plugin-testing's reattach mode,
// so nothing is downloaded), and the provider against a real control
// plane and broker (internal/stack) on a private Postgres. They run in a
// plain `go test` whenever a terraform binary is found: on PATH, or at
// TF_ACC_TERRAFORM_PATH.

// terraformPath is the terraform binary the tests use, or "".
var terraformPath string

func TestMain(m *testing.M) {
	terraformPath = os.Getenv("TF_ACC_TERRAFORM_PATH")
	if terraformPath == "" {
		terraformPath, _ = exec.LookPath("terraform")
	}
	if terraformPath != "" {
		// terraform-plugin-testing reads its settings from the
		// environment; set them once, before any test runs.
		os.Setenv("TF_ACC", "1")
		os.Setenv("TF_ACC_TERRAFORM_PATH", terraformPath)
		// The provider's registry address is eddy-streams/eddy, as in
		// the examples' required_providers blocks.
		os.Setenv("TF_ACC_PROVIDER_NAMESPACE", "eddy-streams")
		os.Setenv("CHECKPOINT_DISABLE", "1")
		os.Setenv("TF_IN_AUTOMATION", "1")
	}
	pgtest.Main(m)
}

var factories = map[string]func() (tfprotov6.ProviderServer, error){
	"eddy": providerserver.NewProtocol6WithError(New("test")()),
}

// accEnv is one Eddy deployment the acceptance subtests share.
type accEnv struct {
	s        *stack.Stack
	operator *client.Client
}

// tenant is an organisation of its own for one subtest, with the admin
// key the provider logs in with.
type tenant struct {
	e             *accEnv
	org           client.CreatedOrganization
	keyID, secret string
	admin         *client.Client
}

// TestAcceptance starts one control plane and broker and runs every
// resource's acceptance test against it, each in an organisation of its
// own and in parallel.
func TestAcceptance(t *testing.T) {
	if terraformPath == "" && os.Getenv("CI") != "" {
		t.Fatal("no terraform binary on PATH and TF_ACC_TERRAFORM_PATH is unset; CI runs the acceptance tests")
	}
	if terraformPath == "" {
		t.Skip("acceptance tests skipped: no terraform binary on PATH and TF_ACC_TERRAFORM_PATH is unset " +
			"(terraform-plugin-testing would try to download one, and these tests run offline)")
	}
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), API: true, Brokers: 1,
		BrokerArgs: []string{"--sasl-mechanisms=PLAIN"}})
	e := &accEnv{s: s, operator: client.New(s.APIURL(), client.WithToken(stack.OperatorToken))}
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *accEnv)
	}{
		{"cluster", testAccCluster},
		{"cluster_broker_configs", testAccClusterBrokerConfigs},
		{"cluster_quota_config", testAccClusterQuotaConfig},
		{"topic", testAccTopic},
		{"service_account", testAccServiceAccount},
		{"api_key", testAccAPIKey},
		{"role_binding", testAccRoleBinding},
		{"acl", testAccACL},
		{"data_sources", testAccDataSources},
		{"example_complete", testAccExampleComplete},
		{"audit", testAccAudit},
		{"cluster_allow_list", testAccClusterAllowList},
		{"identity", testAccIdentity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, e)
		})
	}
}

func (e *accEnv) tenant(t *testing.T, name string) *tenant {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	org, err := e.operator.CreateOrganization(ctx, client.CreateOrganizationRequest{Name: name})
	if err != nil {
		t.Fatalf("create organisation: %v", err)
	}
	tn := &tenant{e: e, org: org, keyID: org.AdminAPIKey.ID, secret: org.AdminAPIKey.Secret}
	tn.admin = client.New(e.s.APIURL(), client.WithAPIKey(tn.keyID, tn.secret))
	return tn
}

// config prefixes HCL with the provider block of the tenant.
func (tn *tenant) config(hcl string) string { return tn.configAt(tn.e.s.APIURL(), hcl) }

// configAt is config with the provider talking to endpoint.
func (tn *tenant) configAt(endpoint, hcl string) string {
	return fmt.Sprintf(`
provider "eddy" {
  endpoint   = %q
  api_key    = %q
  api_secret = %q
}
%s`, endpoint, tn.keyID, tn.secret, hcl)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// attr reads one attribute of a resource from the state.
func attr(s *terraform.State, name, key string) (string, error) {
	rs, ok := s.RootModule().Resources[name]
	if !ok {
		return "", fmt.Errorf("%s is not in the state", name)
	}
	v, ok := rs.Primary.Attributes[key]
	if !ok {
		return "", fmt.Errorf("%s has no attribute %s", name, key)
	}
	return v, nil
}

// kafka is a Kafka client of the stack logging in with an API key; an
// organisation-wide key names its cluster in the username.
func (e *accEnv) kafka(t *testing.T, user, secret string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.s.Bootstrap()...),
		kgo.SASL(plain.Auth{User: user, Pass: secret}.AsMechanism())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// checkNoneLeft is a CheckDestroy: the tenant has no clusters, and no
// service accounts or keys but its admin's.
func (tn *tenant) checkNoneLeft(*terraform.State) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cls, err := tn.admin.ListClusters(ctx, client.ListOptions{})
	if err != nil {
		return err
	}
	if len(cls.Items) != 0 {
		return fmt.Errorf("clusters left after destroy: %+v", cls.Items)
	}
	sas, err := tn.admin.ListServiceAccounts(ctx, client.ListOptions{})
	if err != nil {
		return err
	}
	if len(sas.Items) != 1 || sas.Items[0].ID != tn.org.AdminServiceAccount.ID {
		return fmt.Errorf("service accounts left after destroy: %+v", sas.Items)
	}
	keys, err := tn.admin.ListAPIKeys(ctx, client.ListOptions{})
	if err != nil {
		return err
	}
	if len(keys.Items) != 1 || keys.Items[0].ID != tn.keyID {
		var ids []string
		for _, k := range keys.Items {
			ids = append(ids, k.ID)
		}
		return fmt.Errorf("API keys left after destroy: %s", strings.Join(ids, ", "))
	}
	return nil
}
