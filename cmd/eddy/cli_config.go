package main

// The tenant CLI: `eddy login`, `eddy profile ...`, `eddy cluster ...`,
// `eddy topic ...`, `eddy acl ...`, `eddy role-binding ...`, `eddy group ...`,
// `eddy quota ...`, `eddy service-account ...`, `eddy api-key ...`,
// `eddy client-config`, `eddy billing ...` and, for operators, `eddy org ...`
// and `eddy plan ...`. It speaks to the REST API through api/client only,
// except where the REST API has no route (resetting a group's offsets,
// deleting a group): there it speaks Kafka to the cluster (cli_kafka.go).
//
// Settings come from flags (--url, --api-key-id, --api-key-secret,
// --token, --cluster), their EDDY_* variables, or the profile in use
// (--profile, else the current one) in the file `eddy login` and `eddy
// profile add` write ($EDDY_CLI_CONFIG, default <user config
// dir>/eddy/config.json, mode 0600), in that order.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/eddy-streams/eddy/api/client"
)

// tenantCommands are the CLI's commands, registered by newRoot.
func tenantCommands() []*cobra.Command {
	return []*cobra.Command{newLoginCmd(), newProfileCmd(), newOrgCmd(), newPlanCmd(), newClusterCmd(), newTopicCmd(), newACLCmd(), newRoleBindingCmd(),
		newGroupCmd(), newQuotaCmd(), newServiceAccountCmd(), newAPIKeyCmd(), newClientConfigCmd(), newBillingCmd(), newAuditCmd(), newIdentityProviderCmd(), newIdentityPoolCmd()}
}

// cliConfig is the CLI's file: named profiles (an organisation's API, the
// key to use there and a default cluster) and the one in use. It holds
// secrets, so it is written with mode 0600 in a directory of mode 0700.
type cliConfig struct {
	Current  string              `json:"current_profile,omitempty"`
	Profiles map[string]*profile `json:"profiles,omitempty"`
	// The one login `eddy login` saved before there were profiles: read
	// as the profile "default", never written again.
	LegacyURL          string `json:"url,omitempty"`
	LegacyAPIKeyID     string `json:"api_key_id,omitempty"`
	LegacyAPIKeySecret string `json:"api_key_secret,omitempty"`
}

// profile is one named set of connection settings; flags and their EDDY_*
// variables override each field.
type profile struct {
	URL          string `json:"url"`
	APIKeyID     string `json:"api_key_id,omitempty"`
	APIKeySecret string `json:"api_key_secret,omitempty"`
	// Token is a bearer token instead of an API key (operators).
	Token   string `json:"token,omitempty"`
	Cluster string `json:"cluster,omitempty"`
}

// defaultProfile is the profile `eddy login` writes when none is in use.
const defaultProfile = "default"

func cliConfigPath() (string, error) {
	if p := os.Getenv("EDDY_CLI_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory (set EDDY_CLI_CONFIG): %w", err)
	}
	return filepath.Join(dir, "eddy", "config.json"), nil
}

func loadCLIConfig() (cliConfig, error) {
	c := cliConfig{Profiles: map[string]*profile{}}
	p, err := cliConfigPath()
	if err != nil {
		return c, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", p, err)
	}
	if c.Profiles == nil {
		c.Profiles = map[string]*profile{}
	}
	if c.LegacyURL != "" && c.Profiles[defaultProfile] == nil {
		c.Profiles[defaultProfile] = &profile{URL: c.LegacyURL, APIKeyID: c.LegacyAPIKeyID, APIKeySecret: c.LegacyAPIKeySecret}
		if c.Current == "" {
			c.Current = defaultProfile
		}
	}
	c.LegacyURL, c.LegacyAPIKeyID, c.LegacyAPIKeySecret = "", "", ""
	return c, nil
}

// saveCLIConfig replaces the file atomically: a reader never sees half a
// file, and the secrets in it are never readable by others, not even for a
// moment (the temporary file is created 0600 too).
func saveCLIConfig(c cliConfig) (string, error) {
	p, err := cliConfigPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return "", err
	}
	return p, os.Rename(tmp, p)
}

// apiFlags are the connection and output flags every CLI command takes.
type apiFlags struct {
	url, keyID, keySecret, token string
	profile                      string
	output                       string
	// saved is the profile in use, once loaded (settings).
	saved *profile
}

func (f *apiFlags) register(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&f.url, "url", "", "REST API base URL (default: from the profile)")
	fs.StringVar(&f.keyID, "api-key-id", "", "API key id (default: from the profile)")
	fs.StringVar(&f.keySecret, "api-key-secret", "", "API key secret (default: from the profile)")
	fs.StringVar(&f.token, "token", "", "bearer token instead of an API key (operators: the admin token)")
	fs.StringVar(&f.profile, "profile", "", "profile to use instead of the current one (eddy profile list)")
	fs.StringVarP(&f.output, "output", "o", "table", "output format: "+strings.Join(outputFormats, ", "))
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputFormats, cobra.ShellCompDirectiveNoFileComp))
	cmd.RegisterFlagCompletionFunc("profile", completeProfiles)
}

// settings returns the profile in use (--profile, else the current one)
// with what flags and variables give over it. A profile named on the
// command line must exist; with none in use, the flags alone count.
func (f *apiFlags) settings() (profile, error) {
	if f.saved == nil {
		cfg, err := loadCLIConfig()
		if err != nil {
			return profile{}, err
		}
		name := f.profile
		if name == "" {
			name = cfg.Current
		}
		f.saved = &profile{}
		if p := cfg.Profiles[name]; p != nil {
			f.saved = p
		} else if f.profile != "" {
			return profile{}, fmt.Errorf("no profile %q (eddy profile list)", f.profile)
		}
	}
	p := *f.saved
	if f.url != "" {
		p.URL = f.url
	}
	// Credentials on the command line replace the profile's as a whole: a
	// key id from one and a secret from the other would never match.
	switch {
	case f.token != "":
		p.Token, p.APIKeyID, p.APIKeySecret = f.token, "", ""
	case f.keyID != "" || f.keySecret != "":
		p.Token, p.APIKeyID, p.APIKeySecret = "", f.keyID, f.keySecret
	}
	return p, nil
}

// cluster returns the --cluster flag's value, else the profile's cluster.
func (f *apiFlags) cluster(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	p, err := f.settings()
	if err != nil {
		return "", err
	}
	if p.Cluster == "" {
		return "", errors.New("--cluster is required (or set the profile's: eddy profile add NAME --cluster ...)")
	}
	return p.Cluster, nil
}

// clusterClient is client, and the cluster the command acts on (cluster).
func (f *apiFlags) clusterClient(flag string) (*client.Client, string, error) {
	id, err := f.cluster(flag)
	if err != nil {
		return nil, "", err
	}
	cl, err := f.client()
	return cl, id, err
}

// client builds an API client from flags, falling back to the profile.
func (f *apiFlags) client() (*client.Client, error) {
	if err := f.checkOutput(); err != nil {
		return nil, err
	}
	p, err := f.settings()
	if err != nil {
		return nil, err
	}
	return newClient(p)
}

// newClient builds an API client for p's URL and credentials.
func newClient(p profile) (*client.Client, error) {
	if p.URL == "" {
		return nil, errors.New("no API URL: run eddy login or pass --url")
	}
	opts := []client.Option{client.WithUserAgent("eddy-cli")}
	switch {
	case p.Token != "":
		opts = append(opts, client.WithToken(p.Token))
	case p.APIKeyID != "":
		opts = append(opts, client.WithAPIKey(p.APIKeyID, p.APIKeySecret))
	default:
		return nil, errors.New("no credentials: run eddy login or pass --api-key-id and --api-key-secret")
	}
	return client.New(p.URL, opts...), nil
}

// readSecret returns s, or the first line of stdin for "-", which keeps a
// secret out of the shell's history and the process list.
func readSecret(cmd *cobra.Command, s string) (string, error) {
	if s != "-" {
		return s, nil
	}
	b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 4096))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func configString(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// parseConfigs turns repeated --config k=v flags into a map.
func parseConfigs(kvs []string) (map[string]string, error) { return parseFlagConfigs("config", kvs) }

// parseFlagConfigs is parseConfigs for the repeatable flag named flag.
func parseFlagConfigs(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want name=value", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

// listAll pages through a listing.
func listAll[T any](ctx context.Context, page func(context.Context, client.ListOptions) (client.List[T], error)) ([]T, error) {
	var out []T
	o := client.ListOptions{Limit: 1000}
	for {
		p, err := page(ctx, o)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Items...)
		if p.NextCursor == "" {
			return out, nil
		}
		o.Cursor = p.NextCursor
	}
}

// listInCluster lists all of a cluster's items with page, a client method
// such as (*client.Client).ListACLs.
func listInCluster[T any](ctx context.Context, f *apiFlags, cluster string, page func(*client.Client, context.Context, string, client.ListOptions) (client.List[T], error)) ([]T, error) {
	cl, id, err := f.clusterClient(cluster)
	if err != nil {
		return nil, err
	}
	return listAll(ctx, func(ctx context.Context, o client.ListOptions) (client.List[T], error) { return page(cl, ctx, id, o) })
}

func newLoginCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Check an API key against the REST API and save it for later commands",
		Example: "  eddy login --url https://api.eddy.example --api-key-id key-... --api-key-secret ...\n" +
			"  echo $SECRET | eddy login --url ... --api-key-id key-... --api-key-secret -",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.url == "" || f.keyID == "" || f.keySecret == "" {
				return errors.New("--url, --api-key-id and --api-key-secret are required")
			}
			var err error
			if f.keySecret, err = readSecret(cmd, f.keySecret); err != nil {
				return err
			}
			if err := f.checkOutput(); err != nil {
				return err
			}
			// The key is checked from the flags alone, not through settings:
			// --profile may name a profile that login is about to create.
			cl, err := newClient(profile{URL: f.url, APIKeyID: f.keyID, APIKeySecret: f.keySecret})
			if err != nil {
				return err
			}
			if _, err := cl.ListClusters(cmd.Context(), client.ListOptions{Limit: 1}); err != nil {
				return fmt.Errorf("login failed: %w", err)
			}
			cfg, err := loadCLIConfig()
			if err != nil {
				return err
			}
			name := cmp.Or(f.profile, cfg.Current, defaultProfile)
			p := cfg.Profiles[name]
			if p == nil {
				p = &profile{}
				cfg.Profiles[name] = p
			}
			p.URL, p.APIKeyID, p.APIKeySecret, p.Token = strings.TrimRight(f.url, "/"), f.keyID, f.keySecret, ""
			cfg.Current = cmp.Or(cfg.Current, name)
			path, err := saveCLIConfig(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged in to %s as %s (saved as profile %s in %s)\n", f.url, f.keyID, name, path)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func newOrgCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{Use: "org", Example: "  eddy org create acme --url https://api.eddy.example --token $EDDY_ADMIN_TOKEN\n" +
		"  eddy org list --token $EDDY_ADMIN_TOKEN", Short: "Manage organisations (operators, with --token)"}
	f.register(cmd)
	orgRows := func(orgs []client.Organization) [][]string {
		var rows [][]string
		for _, o := range orgs {
			rows = append(rows, []string{o.ID, o.Name, o.CreatedAt.Format("2006-01-02 15:04:05")})
		}
		return rows
	}
	cmd.AddCommand(&cobra.Command{
		Use: "create NAME", Example: "  eddy org create acme --url https://api.eddy.example --token $EDDY_ADMIN_TOKEN", Short: "Create an organisation with an admin service account and API key", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			o, err := cl.CreateOrganization(cmd.Context(), client.CreateOrganizationRequest{Name: args[0]})
			if err != nil {
				return err
			}
			if f.structured() {
				return f.print(cmd.OutOrStdout(), o, nil, nil)
			}
			return f.describe(cmd.OutOrStdout(), o, [][2]string{
				{"Organisation", o.Organization.ID}, {"Name", o.Organization.Name},
				{"Admin service account", o.AdminServiceAccount.ID},
				{"Admin API key id", o.AdminAPIKey.ID}, {"Admin API key secret", o.AdminAPIKey.Secret + "   (shown once)"},
			})
		},
	}, &cobra.Command{
		Use: "list", Example: "  eddy org list --token $EDDY_ADMIN_TOKEN -o yaml", Short: "List organisations", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			orgs, err := listAll(cmd.Context(), cl.ListOrganizations)
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), orgs, []string{"ID", "NAME", "CREATED"}, orgRows(orgs))
		},
	}, &cobra.Command{
		Use: "delete ID", Example: "  eddy org delete org-... --token $EDDY_ADMIN_TOKEN", Short: "Delete an organisation and everything in it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			if err := cl.DeleteOrganization(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted organisation %s\n", args[0])
			return nil
		},
	})
	return cmd
}
