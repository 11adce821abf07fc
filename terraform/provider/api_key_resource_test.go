package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/api/client"
)

// testAccAPIKey: create (the key logs in to the token endpoint and to
// Kafka), rotate through rotation_keepers while a watcher checks that a
// valid key exists at every moment, import, a key deleted over REST is
// recreated, rotate_after plans a rotation once due, destroy.
func testAccAPIKey(t *testing.T, e *accEnv) {
	tn := e.tenant(t, "tf-key")
	ctx := ctxT(t)
	type key struct{ id, secret, sa string }
	works := func(k key) error {
		_, err := tn.admin.Token(ctx, k.id, k.secret) // REST's token endpoint checks the secret
		return err
	}
	// The provider reaches the API through a proxy that sees the
	// rotation's requests: when the old key's DELETE comes, the key
	// created before it must already work.
	var (
		pmu      sync.Mutex
		created  []key
		deletes  []string
		atDelete []error
	)
	target, _ := url.Parse(e.s.APIURL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/v1/api-keys/") {
			pmu.Lock()
			deletes = append(deletes, strings.TrimPrefix(r.URL.Path, "/v1/api-keys/"))
			if n := len(created); n > 0 {
				atDelete = append(atDelete, works(created[n-1]))
			} else {
				atDelete = append(atDelete, fmt.Errorf("no key was created before the delete"))
			}
			pmu.Unlock()
		}
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err == nil && r.Method == http.MethodPost && r.URL.Path == "/v1/api-keys" && resp.StatusCode == http.StatusCreated {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(b))
			var k client.APIKey
			if json.Unmarshal(b, &k) == nil {
				pmu.Lock()
				created = append(created, key{id: k.ID, secret: k.Secret, sa: k.ServiceAccountID})
				pmu.Unlock()
			}
		}
		return resp, err
	})
	ps := httptest.NewServer(proxy)
	t.Cleanup(ps.Close)
	cfg := func(generation, extra string) string {
		return tn.configAt(ps.URL, fmt.Sprintf(`
resource "eddy_cluster" "c" { name = "keys" }
resource "eddy_service_account" "a" { name = "app" }
resource "eddy_role_binding" "b" {
  cluster_id         = eddy_cluster.c.id
  service_account_id = eddy_service_account.a.id
  role               = "developer-write"
}
resource "eddy_api_key" "k" {
  service_account_id = eddy_service_account.a.id
  cluster_id         = eddy_cluster.c.id
  description        = "app key"
  rotation_keepers   = { generation = %q }
  %s
  depends_on = [eddy_role_binding.b]
}`, generation, extra))
	}
	var cur key
	load := func(s *terraform.State) (key, error) {
		var k key
		var err error
		if k.id, err = attr(s, "eddy_api_key.k", "id"); err != nil {
			return k, err
		}
		if k.secret, err = attr(s, "eddy_api_key.k", "secret"); err != nil {
			return k, err
		}
		k.sa, err = attr(s, "eddy_service_account.a", "id")
		return k, err
	}
	// The rotation watcher: until stopped, the old key must authenticate
	// or, once it no longer does, another key of the account must exist.
	var (
		stop   context.CancelFunc
		wg     sync.WaitGroup
		mu     sync.Mutex
		gap    error
		probes int
		sawTwo bool
	)
	watch := func(old key) {
		wctx, cancel := context.WithCancel(ctx)
		stop = cancel
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wctx.Err() == nil {
				err := works(old)
				keys, lerr := tn.admin.ListAPIKeys(wctx, client.ListOptions{})
				if wctx.Err() != nil {
					return
				}
				mu.Lock()
				probes++
				n := 0
				for _, k := range keys.Items {
					if k.ServiceAccountID == old.sa {
						n++
					}
				}
				sawTwo = sawTwo || n >= 2
				if err != nil {
					if lerr != nil || n == 0 {
						gap = fmt.Errorf("old key %s rejected (%v) while the account has %d keys (%v)", old.id, err, n, lerr)
					}
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	t.Cleanup(func() {
		if stop != nil {
			stop()
		}
		wg.Wait()
	})
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             tn.checkNoneLeft,
		Steps: []resource.TestStep{
			{
				Config:      cfg("1", `rotate_after = "soon"`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Invalid duration`),
			},
			{
				Config: cfg("1", ""),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestMatchResourceAttr("eddy_api_key.k", "id", regexp.MustCompile(`^key-`)),
					resource.TestCheckResourceAttrSet("eddy_api_key.k", "secret"),
					resource.TestCheckResourceAttrPair("eddy_api_key.k", "cluster_id", "eddy_cluster.c", "id"),
					func(s *terraform.State) error {
						var err error
						if cur, err = load(s); err != nil {
							return err
						}
						if err := works(cur); err != nil {
							return fmt.Errorf("new key at the token endpoint: %w", err)
						}
						// And over Kafka (SASL/PLAIN), where it is scoped to its cluster.
						cl := e.kafka(t, cur.id, cur.secret, kgo.DefaultProduceTopic("ping"))
						return cl.Ping(ctx)
					},
				),
			},
			{
				PreConfig: func() {
					pmu.Lock()
					created, deletes, atDelete = nil, nil, nil
					pmu.Unlock()
					watch(cur)
				},
				Config: cfg("2", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("eddy_api_key.k", plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue("eddy_api_key.k", tfjsonpath.New("secret")),
				}},
				Check: func(s *terraform.State) error {
					stop()
					wg.Wait()
					next, err := load(s)
					if err != nil {
						return err
					}
					mu.Lock()
					defer mu.Unlock()
					t.Logf("rotation watcher: %d probes, both keys seen at once: %v", probes, sawTwo)
					switch {
					case gap != nil:
						return gap
					case probes == 0:
						return fmt.Errorf("the watcher never probed")
					case next.id == cur.id || next.secret == cur.secret:
						return fmt.Errorf("key not rotated: %s", next.id)
					}
					if err := works(next); err != nil {
						return fmt.Errorf("rotated key: %w", err)
					}
					pmu.Lock()
					defer pmu.Unlock()
					if len(created) != 1 || created[0].id != next.id || len(deletes) != 1 || deletes[0] != cur.id {
						return fmt.Errorf("rotation made keys %v and deleted %v; want %s made, then %s deleted", created, deletes, next.id, cur.id)
					}
					if atDelete[0] != nil {
						return fmt.Errorf("when the old key was deleted, the new one did not work: %w", atDelete[0])
					}
					if err := works(cur); client.StatusOf(err) != 401 {
						return fmt.Errorf("old key after rotation: %v, want 401", err)
					}
					cur = next
					return nil
				},
			},
			{
				ResourceName:            "eddy_api_key.k",
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"secret", "rotation_keepers", "rotation_keepers.%", "rotation_keepers.generation"},
			},
			{
				// Drift: the key deleted over REST is created again.
				PreConfig: func() {
					if err := tn.admin.DeleteAPIKey(ctx, cur.id); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg("2", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("eddy_api_key.k", plancheck.ResourceActionCreate),
				}},
				Check: func(s *terraform.State) error {
					var err error
					if cur, err = load(s); err != nil {
						return err
					}
					return works(cur)
				},
			},
			{
				// rotate_after: once the key is older, the plan rotates it.
				PreConfig:          func() { time.Sleep(1100 * time.Millisecond) },
				Config:             cfg("2", `rotate_after = "1s"`),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				// Not yet due: setting rotate_after alone changes no key.
				Config: cfg("2", `rotate_after = "720h"`),
				Check: func(s *terraform.State) error {
					if id, err := attr(s, "eddy_api_key.k", "id"); err != nil || id != cur.id {
						return fmt.Errorf("key %s became %s (%v) without a rotation being due", cur.id, id, err)
					}
					return nil
				},
			},
		},
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
