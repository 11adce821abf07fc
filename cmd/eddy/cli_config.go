package main

// The tenant CLI: `eddy login`, `eddy cluster ...`, `eddy topic ...`,
// `eddy service-account ...`, `eddy api-key ...`, `eddy billing ...` and, for operators,
// `eddy org ...`. It speaks to the REST API through api/client only.
//
// Credentials come from flags (--url, --api-key-id, --api-key-secret,
// --token), their EDDY_* variables, or the file `eddy login` writes
// ($EDDY_CLI_CONFIG, default <user config dir>/eddy/config.json, mode 0600).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/eddy-streams/eddy/api/client"
)

// tenantCommands are the CLI's commands, registered by newRoot.
func tenantCommands() []*cobra.Command {
	return []*cobra.Command{newLoginCmd(), newOrgCmd(), newPlanCmd(), newClusterCmd(), newTopicCmd(), newServiceAccountCmd(), newAPIKeyCmd(), newBillingCmd()}
}

// cliConfig is what `eddy login` saves.
type cliConfig struct {
	URL          string `json:"url"`
	APIKeyID     string `json:"api_key_id,omitempty"`
	APIKeySecret string `json:"api_key_secret,omitempty"`
}

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
	var c cliConfig
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
	return c, nil
}

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

// apiFlags are the connection flags every CLI command takes.
type apiFlags struct {
	url, keyID, keySecret, token string
	output                       string
}

func (f *apiFlags) register(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&f.url, "url", "", "REST API base URL (default: from eddy login)")
	fs.StringVar(&f.keyID, "api-key-id", "", "API key id (default: from eddy login)")
	fs.StringVar(&f.keySecret, "api-key-secret", "", "API key secret (default: from eddy login)")
	fs.StringVar(&f.token, "token", "", "bearer token instead of an API key (operators: the admin token)")
	fs.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
}

// client builds an API client from flags, falling back to the saved login.
func (f *apiFlags) client() (*client.Client, error) {
	if f.output != "table" && f.output != "json" {
		return nil, fmt.Errorf("--output must be table or json, not %q", f.output)
	}
	saved, err := loadCLIConfig()
	if err != nil {
		return nil, err
	}
	url := f.url
	if url == "" {
		url = saved.URL
	}
	if url == "" {
		return nil, errors.New("no API URL: run eddy login or pass --url")
	}
	opts := []client.Option{client.WithUserAgent("eddy-cli")}
	switch {
	case f.token != "":
		opts = append(opts, client.WithToken(f.token))
	case f.keyID != "" || f.keySecret != "":
		opts = append(opts, client.WithAPIKey(f.keyID, f.keySecret))
	case saved.APIKeyID != "":
		opts = append(opts, client.WithAPIKey(saved.APIKeyID, saved.APIKeySecret))
	default:
		return nil, errors.New("no credentials: run eddy login or pass --api-key-id and --api-key-secret")
	}
	return client.New(url, opts...), nil
}

// print writes v as indented JSON, or as a table of rows under header.
func (f *apiFlags) print(w io.Writer, v any, header []string, rows [][]string) error {
	if f.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// describe prints one object as key/value lines, or JSON.
func (f *apiFlags) describe(w io.Writer, v any, fields [][2]string) error {
	if f.output == "json" {
		return f.print(w, v, nil, nil)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, kv := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	return tw.Flush()
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
			if f.keySecret == "-" {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 4096))
				if err != nil {
					return err
				}
				f.keySecret = strings.TrimSpace(string(b))
			}
			cl, err := f.client()
			if err != nil {
				return err
			}
			if _, err := cl.ListClusters(cmd.Context(), client.ListOptions{Limit: 1}); err != nil {
				return fmt.Errorf("login failed: %w", err)
			}
			p, err := saveCLIConfig(cliConfig{URL: strings.TrimRight(f.url, "/"), APIKeyID: f.keyID, APIKeySecret: f.keySecret})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged in to %s as %s (saved in %s)\n", f.url, f.keyID, p)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func newOrgCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{Use: "org", Short: "Manage organisations (operators, with --token)"}
	f.register(cmd)
	orgRows := func(orgs []client.Organization) [][]string {
		var rows [][]string
		for _, o := range orgs {
			rows = append(rows, []string{o.ID, o.Name, o.CreatedAt.Format("2006-01-02 15:04:05")})
		}
		return rows
	}
	cmd.AddCommand(&cobra.Command{
		Use: "create NAME", Short: "Create an organisation with an admin service account and API key", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			o, err := cl.CreateOrganization(cmd.Context(), client.CreateOrganizationRequest{Name: args[0]})
			if err != nil {
				return err
			}
			if f.output == "json" {
				return f.print(cmd.OutOrStdout(), o, nil, nil)
			}
			return f.describe(cmd.OutOrStdout(), o, [][2]string{
				{"Organisation", o.Organization.ID}, {"Name", o.Organization.Name},
				{"Admin service account", o.AdminServiceAccount.ID},
				{"Admin API key id", o.AdminAPIKey.ID}, {"Admin API key secret", o.AdminAPIKey.Secret + "   (shown once)"},
			})
		},
	}, &cobra.Command{
		Use: "list", Short: "List organisations", Args: cobra.NoArgs,
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
		Use: "delete ID", Short: "Delete an organisation and everything in it", Args: cobra.ExactArgs(1),
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
