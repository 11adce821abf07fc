// Command terraform-provider-eddy is Eddy's Terraform provider plugin,
// registry address eddy-streams/eddy. Terraform starts it; run it by hand
// only with -debug, which prints a TF_REATTACH_PROVIDERS value for
// debugging from an IDE. terraform/README.md shows how to use a local
// build with a dev_overrides block.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/eddy-streams/eddy/terraform/provider"
)

// version is set at release time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	debug := flag.Bool("debug", false, "run with support for debuggers such as delve")
	flag.Parse()
	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: "registry.terraform.io/eddy-streams/eddy",
		Debug:   *debug,
	})
	if err != nil {
		log.Fatal(err)
	}
}
