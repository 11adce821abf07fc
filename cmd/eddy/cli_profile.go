package main

// `eddy profile add|use|list|delete`: named connection settings in the
// CLI's file (cliConfig), for several organisations or endpoints. The
// current profile serves every command; --profile (EDDY_PROFILE) picks
// another for one command, and flags override single settings.

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// profileView is a profile as listed: never its secrets.
type profileView struct {
	Name     string `json:"name"`
	Current  bool   `json:"current"`
	URL      string `json:"url"`
	APIKeyID string `json:"api_key_id,omitempty"`
	Token    bool   `json:"token"`
	Cluster  string `json:"cluster,omitempty"`
}

func completeProfiles(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	cfg, err := loadCLIConfig()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	return slices.Sorted(maps.Keys(cfg.Profiles)), cobra.ShellCompDirectiveNoFileComp
}

func newProfileCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{Use: "profile", Example: "  eddy profile add staging --url https://api.staging.example --api-key-id key-... --api-key-secret -\n" +
		"  eddy profile use staging\n" +
		"  eddy cluster list --profile prod", Aliases: []string{"profiles"}, Short: "Manage named connection settings (organisation, endpoint, key, default cluster)"}
	f.register(cmd)

	var (
		cluster string
		use     bool
	)
	add := &cobra.Command{
		Use: "add NAME", Short: "Add or replace a profile; the first one added is the current one", Args: cobra.ExactArgs(1),
		Long: "Saves the settings without checking them (eddy login checks). Secrets are stored in the\n" +
			"CLI's file, mode 0600; --api-key-secret - reads the secret from stdin.",
		Example: "  eddy profile add prod --url https://api.eddy.example --api-key-id key-... --api-key-secret - --cluster vc-...\n" +
			"  eddy profile add ops --url https://api.eddy.example --token $EDDY_ADMIN_TOKEN --use",
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.url == "" {
				return errors.New("--url is required")
			}
			if f.token == "" && (f.keyID == "" || f.keySecret == "") {
				return errors.New("--api-key-id and --api-key-secret, or --token, are required")
			}
			secret, err := readSecret(cmd, f.keySecret)
			if err != nil {
				return err
			}
			cfg, err := loadCLIConfig()
			if err != nil {
				return err
			}
			name := args[0]
			cfg.Profiles[name] = &profile{URL: strings.TrimRight(f.url, "/"), APIKeyID: f.keyID, APIKeySecret: secret, Token: f.token, Cluster: cluster}
			if use || cfg.Current == "" {
				cfg.Current = name
			}
			path, err := saveCLIConfig(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Saved profile %s in %s\n", name, path)
			return nil
		},
	}
	add.Flags().StringVar(&cluster, "cluster", "", "default cluster of commands that take --cluster")
	add.Flags().BoolVar(&use, "use", false, "make it the current profile")

	useCmd := &cobra.Command{
		Use: "use NAME", Short: "Make a profile the current one", Args: cobra.ExactArgs(1),
		Example:           "  eddy profile use staging",
		ValidArgsFunction: completeProfiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := editProfile(args[0], func(cfg *cliConfig) { cfg.Current = args[0] }); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Using profile %s\n", args[0])
			return nil
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "List profiles (never their secrets); * marks the current one", Args: cobra.NoArgs,
		Example: "  eddy profile list\n  eddy profile list -o yaml",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadCLIConfig()
			if err != nil {
				return err
			}
			var (
				views []profileView
				rows  [][]string
			)
			for _, name := range slices.Sorted(maps.Keys(cfg.Profiles)) {
				p := cfg.Profiles[name]
				v := profileView{Name: name, Current: name == cfg.Current, URL: p.URL, APIKeyID: p.APIKeyID, Token: p.Token != "", Cluster: p.Cluster}
				views = append(views, v)
				mark, cred := "", cmp.Or(p.APIKeyID, "-")
				if v.Current {
					mark = "*"
				}
				if v.Token {
					cred = "(token)"
				}
				rows = append(rows, []string{mark, name, p.URL, cred, cmp.Or(p.Cluster, "-")})
			}
			return f.print(cmd.OutOrStdout(), views, []string{"CURRENT", "NAME", "URL", "API KEY", "CLUSTER"}, rows)
		},
	}
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a profile and the secret saved with it", Args: cobra.ExactArgs(1),
		Example:           "  eddy profile delete staging",
		ValidArgsFunction: completeProfiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			err := editProfile(args[0], func(cfg *cliConfig) {
				delete(cfg.Profiles, args[0])
				if cfg.Current == args[0] {
					cfg.Current = ""
				}
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted profile %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(add, useCmd, list, del)
	return cmd
}

// editProfile applies edit to the CLI's file, which must hold the profile
// name, and saves it.
func editProfile(name string, edit func(*cliConfig)) error {
	cfg, err := loadCLIConfig()
	if err != nil {
		return err
	}
	if cfg.Profiles[name] == nil {
		return fmt.Errorf("no profile %q (eddy profile list)", name)
	}
	edit(&cfg)
	_, err = saveCLIConfig(cfg)
	return err
}
