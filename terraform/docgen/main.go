// Command docgen writes the provider's reference pages with HashiCorp's
// tfplugindocs (the tool the Terraform Registry's layout comes from), from
// the schema's MarkdownDescription fields and the examples:
//
//	docs/index.md                  the provider block (examples/provider/provider.tf)
//	docs/resources/<name>.md       examples/resources/<type>/resource.tf and import.sh
//	docs/data-sources/<name>.md    examples/data-sources/<type>/data-source.tf
//
// tfplugindocs normally builds the provider and installs it into a
// Terraform it may download; here the schema comes from the local
// terraform binary (TF_ACC_TERRAFORM_PATH, else PATH) with the provider
// built into a dev_overrides directory, so it runs offline (tfplugindocs
// itself comes from the Go module proxy). `go generate ./terraform/...`
// runs it; TestDocsUpToDate fails when the committed pages differ from
// what it writes.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// tfplugindocs is the tool and version that renders the pages.
const tfplugindocs = "github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs@v0.25.0"

func main() {
	out := flag.String("docs", "docs", "directory to write the pages to")
	dir := flag.String("terraform-dir", ".", "the terraform/ directory (examples/ and templates/ are read from it)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := generate(ctx, *dir, *out); err != nil {
		log.Fatal(err)
	}
}

// generate renders the pages of the provider whose terraform/ directory is
// tfDir into out, replacing what out held.
func generate(ctx context.Context, tfDir, out string) error {
	tfDir, err := filepath.Abs(tfDir)
	if err != nil {
		return err
	}
	if out, err = filepath.Abs(out); err != nil {
		return err
	}
	tf := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if tf == "" {
		if tf, err = exec.LookPath("terraform"); err != nil {
			return errors.New("docgen: no terraform binary on PATH and TF_ACC_TERRAFORM_PATH is unset (make deps installs one)")
		}
	}
	tmp, err := os.MkdirTemp("", "eddy-docgen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, work := filepath.Join(tmp, "bin"), filepath.Join(tmp, "work")
	for _, d := range []string{bin, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := run(ctx, filepath.Dir(tfDir), "go", "build", "-o", filepath.Join(bin, "terraform-provider-eddy"), "./cmd/terraform-provider-eddy"); err != nil {
		return err
	}
	rc := filepath.Join(tmp, "terraformrc")
	if err := os.WriteFile(rc, fmt.Appendf(nil, "provider_installation {\n  dev_overrides {\n    %q = %q\n  }\n  direct {}\n}\n", "eddy-streams/eddy", bin), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(`terraform {
  required_providers {
    eddy = { source = "eddy-streams/eddy" }
  }
}
`), 0o644); err != nil {
		return err
	}
	var schema bytes.Buffer
	cmd := exec.CommandContext(ctx, tf, "providers", "schema", "-json")
	cmd.Dir, cmd.Stdout, cmd.Stderr = work, &schema, os.Stderr
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+rc, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docgen: terraform providers schema: %w", err)
	}
	// tfplugindocs looks a provider named "eddy" up under the registry's
	// default (hashicorp) namespace.
	js := bytes.ReplaceAll(schema.Bytes(), []byte(`"registry.terraform.io/eddy-streams/eddy"`), []byte(`"registry.terraform.io/hashicorp/eddy"`))
	schemaFile := filepath.Join(tmp, "schema.json")
	if err := os.WriteFile(schemaFile, js, 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	// tfplugindocs joins the output directory to the provider directory,
	// even an absolute one.
	rel, err := filepath.Rel(tfDir, out)
	if err != nil {
		return err
	}
	return run(ctx, tfDir, "go", "run", tfplugindocs, "generate",
		"--provider-dir", tfDir, "--provider-name", "eddy", "--rendered-provider-name", "Eddy",
		"--providers-schema", schemaFile, "--rendered-website-dir", rel, "--website-temp-dir", filepath.Join(tmp, "site"))
}

func run(ctx context.Context, dir string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docgen: %s %v: %w", name, args, err)
	}
	return nil
}
