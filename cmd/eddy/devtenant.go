package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/eddy-streams/eddy/control-plane/identity"
	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/store"
)

// devTenant is the development organisation `eddy dev` makes on first start:
// organisation "dev", virtual cluster "dev" and an API key of the
// organisation's admin service account scoped to that cluster. Its
// credentials live in <data-dir>/dev.env (mode 0600) so they survive
// restarts; if the file is lost or its key was deleted, a new key is made.
type devTenant struct {
	OrgID, ClusterID, KeyID, Secret string
}

const devName = "dev"

// ensureDevTenant finds or creates the development tenant.
func ensureDevTenant(ctx context.Context, dbURL, envPath string) (devTenant, error) {
	st, err := store.Open(ctx, dbURL, 0)
	if err != nil {
		return devTenant{}, err
	}
	defer st.Close()

	if t, err := readDevEnv(envPath); err == nil {
		if k, err := st.KeyForAuth(ctx, t.KeyID); err == nil && identity.CheckSecret(k.SecretHash, t.Secret) && k.ClusterID == t.ClusterID {
			return t, nil
		}
	}

	var t devTenant
	org, adminSA, err := findDevOrg(ctx, st)
	if err != nil {
		return t, err
	}
	if org == "" {
		_, hash := identity.NewSecret() // the bootstrap org-wide key is not used
		o, sa, _, err := st.CreateOrg(ctx, devName, hash, nil)
		if err != nil {
			return t, err
		}
		org, adminSA = o.ID, sa.ID
	}
	t.OrgID = org
	clusters, _, err := st.Clusters(ctx, org, store.Page{Limit: 1000})
	if err != nil {
		return t, err
	}
	for _, c := range clusters {
		if c.Name == devName {
			t.ClusterID = c.ID
		}
	}
	if t.ClusterID == "" {
		// Room for benchmarks on one machine: ten times the rates and
		// partitions of a default cluster.
		l := limits.Defaults()
		l.IngressMBps, l.EgressMBps, l.MaxPartitions = 1000, 3000, 10_000
		c, err := st.CreateCluster(ctx, org, devName, l, nil)
		if err != nil {
			return t, err
		}
		t.ClusterID = c.ID
	}
	secret, hash := identity.NewSecret()
	k, err := st.CreateAPIKey(ctx, org, adminSA, t.ClusterID, "made by eddy dev", hash, identity.SCRAMCredentials(secret))
	if err != nil {
		return t, err
	}
	t.KeyID, t.Secret = k.ID, secret
	return t, writeDevEnv(envPath, t)
}

// findDevOrg returns the development organisation and its admin service
// account, or "" if there is none yet.
func findDevOrg(ctx context.Context, st *store.Store) (org, adminSA string, err error) {
	var p store.Page
	for {
		orgs, next, err := st.Orgs(ctx, p)
		if err != nil {
			return "", "", err
		}
		for _, o := range orgs {
			if o.Name != devName {
				continue
			}
			sas, _, err := st.ServiceAccounts(ctx, o.ID, store.Page{Limit: 1000})
			if err != nil {
				return "", "", err
			}
			for _, sa := range sas {
				if sa.OrgAdmin {
					return o.ID, sa.ID, nil
				}
			}
			return "", "", errors.New("eddy dev: the dev organisation has lost its org-admin service account; delete the data directory to start over")
		}
		if next == "" {
			return "", "", nil
		}
		p.After = next
	}
}

func writeDevEnv(path string, t devTenant) error {
	body := fmt.Sprintf("# Development tenant made by `eddy dev`; `source` this file.\nEDDY_ORG=%s\nEDDY_CLUSTER=%s\nEDDY_API_KEY=%s\nEDDY_API_SECRET=%s\n",
		t.OrgID, t.ClusterID, t.KeyID, t.Secret)
	return os.WriteFile(path, []byte(body), 0o600)
}

func readDevEnv(path string) (devTenant, error) {
	f, err := os.Open(path)
	if err != nil {
		return devTenant{}, err
	}
	defer f.Close()
	var t devTenant
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		switch k {
		case "EDDY_ORG":
			t.OrgID = v
		case "EDDY_CLUSTER":
			t.ClusterID = v
		case "EDDY_API_KEY":
			t.KeyID = v
		case "EDDY_API_SECRET":
			t.Secret = v
		}
	}
	if t.KeyID == "" || t.Secret == "" || t.ClusterID == "" {
		return t, errors.New("incomplete")
	}
	return t, sc.Err()
}

type devBanner struct {
	brokers                                           int
	db, bootstrap, api, dir, adminToken, env, metrics string
	tenant                                            devTenant
	anonymous                                         bool
}

// printDevBanner tells the developer how to connect, with snippets that
// work as pasted.
func printDevBanner(w io.Writer, b devBanner) {
	t := b.tenant
	kcat := fmt.Sprintf("kcat -b %s -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=PLAIN -X sasl.username=%s -X sasl.password=%s", b.bootstrap, t.KeyID, t.Secret)
	anon := "off (eddy dev --anonymous accepts unauthenticated clients in vc-dev)"
	if b.anonymous {
		anon = fmt.Sprintf("on: unauthenticated clients act in vc-dev (kcat -b %s -L)", b.bootstrap)
	}
	fmt.Fprintf(w, `
Eddy is running: %d brokers, control plane, Postgres (%s).

  bootstrap:    %s   (SASL_PLAINTEXT: PLAIN, SCRAM-SHA-256/512, OAUTHBEARER)
  organisation: %s, cluster %s
  API key:      %s  secret %s   (also in %s)
  anonymous:    %s
  REST API:     %s  (operator token in %s)
  console:      %s/console/  (sign in with the API key above)
  API docs:     %s/docs
  logs:         %s/logs
  metrics:      http://%s/metrics (control plane), brokers on the following ports

kcat (topics are created on first use):
  printf 'k1:hello\nk2:world\n' | %s -P -t orders -K:
  %s -C -t orders -o beginning -e -f '%%k => %%s (offset %%o)\n'

franz-go:
  cl, err := kgo.NewClient(kgo.SeedBrokers("%s"),
      kgo.SASL(plain.Auth{User: "%s", Pass: os.Getenv("EDDY_API_SECRET")}.AsMechanism()))

curl (REST, as the organisation's admin; or fetch a JWT for OAUTHBEARER):
  curl -s -u %s:$EDDY_API_SECRET %s/v1/clusters/%s/topics
  curl -s -u %s:$EDDY_API_SECRET -d grant_type=client_credentials %s/oauth2/token

  (source %s first to set EDDY_API_SECRET)

Ctrl-C stops everything; data stays in %s.
`, b.brokers, b.db, b.bootstrap, t.OrgID, t.ClusterID, t.KeyID, t.Secret, b.env, anon, b.api, b.adminToken, b.api, b.api, b.dir, b.metrics,
		kcat, kcat, b.bootstrap, t.KeyID, t.KeyID, b.api, t.ClusterID, t.KeyID, b.api, b.env, b.dir)
}
