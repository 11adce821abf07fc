package provider

import (
	"context"
	"fmt"
	"github.com/eddy-streams/eddy/internal/allowlist"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/eddy-streams/eddy/internal/clusterconfig"
	"github.com/eddy-streams/eddy/internal/topicconfig"
)

// The validators repeat the server's rules (api/orgs.go validName,
// api/topics.go validTopicName, internal/topicconfig), so a bad value is
// reported by `terraform plan` rather than half-way through an apply.

// checkName is the rule for cluster and service account names.
func checkName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("must be 1 to 64 characters long, not %d", len(name))
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !ok && (i == 0 || r != '-' && r != '_' && r != '.') {
			return fmt.Errorf("%q: must start with a letter or digit and hold only letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

// checkTopicName is Kafka's rule for topic names.
func checkTopicName(name string) error { return topicconfig.CheckName(name) }

// checkConfig checks one topic config.
func checkConfig(name, value string) error {
	_, known := topicconfig.Lookup(name)
	return configError(topicconfig.Validate(name, value), topicconfig.ErrInvalid, known,
		func() []string { return namesOf(topicconfig.Defs(), func(d topicconfig.Def) string { return d.Name }) })
}

// checkBrokerConfig checks one of a cluster's broker configs.
func checkBrokerConfig(name, value string) error {
	_, known := clusterconfig.Lookup(name)
	return configError(clusterconfig.Validate(name, value), clusterconfig.ErrInvalid, known,
		func() []string {
			return namesOf(clusterconfig.Defs(), func(d clusterconfig.Def) string { return d.Name })
		})
}

func namesOf[D any](defs []D, name func(D) string) []string {
	out := make([]string, len(defs))
	for i, d := range defs {
		out[i] = name(d)
	}
	return out
}

// configError is err without the package's sentinel, naming the known
// configs when the name is not one.
func configError(err, sentinel error, known bool, names func() []string) error {
	if err == nil {
		return nil
	}
	msg := strings.TrimPrefix(err.Error(), sentinel.Error()+": ")
	if !known {
		msg += "; known configs: " + strings.Join(names(), ", ")
	}
	return fmt.Errorf("%s", msg)
}

type nameValidator struct{ what string }

func (v nameValidator) Description(context.Context) string {
	return v.what + " name: 1 to 64 letters, digits, '-', '_' and '.', starting with a letter or digit"
}
func (v nameValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }
func (v nameValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := checkName(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid "+v.what+" name", "The name "+err.Error()+".")
	}
}

type topicNameValidator struct{}

func (topicNameValidator) Description(context.Context) string {
	return "Kafka topic name: 1 to 249 ASCII letters, digits, '.', '_' and '-', not '.' or '..'"
}
func (v topicNameValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}
func (topicNameValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := checkTopicName(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid topic name", "The topic name "+err.Error()+".")
	}
}

// configsValidator checks every entry of a topic config map, or with
// broker of a cluster's broker config map.
type configsValidator struct{ broker bool }

func (v configsValidator) Description(context.Context) string {
	if v.broker {
		return "Kafka broker configs Eddy keeps per cluster, with Kafka's names and value rules"
	}
	return "topic configs Eddy accepts, with Kafka's names and value rules"
}
func (v configsValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }
func (v configsValidator) ValidateMap(ctx context.Context, req validator.MapRequest, resp *validator.MapResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	elems := req.ConfigValue.Elements()
	for _, k := range slices.Sorted(maps.Keys(elems)) {
		sv, ok := elems[k].(types.String)
		if !ok || sv.IsUnknown() {
			continue
		}
		what, check := "Invalid topic config", checkConfig
		if v.broker {
			what, check = "Invalid broker config", checkBrokerConfig
		}
		if sv.IsNull() {
			resp.Diagnostics.AddAttributeError(req.Path.AtMapKey(k), what, k+" must have a value.")
			continue
		}
		if err := check(k, sv.ValueString()); err != nil {
			resp.Diagnostics.AddAttributeError(req.Path.AtMapKey(k), what, err.Error())
		}
	}
}

// durationValidator accepts Go durations ("90s", "12h", "720h").
type durationValidator struct{}

func (durationValidator) Description(context.Context) string {
	return "a positive duration such as 90s, 15m or 720h"
}
func (v durationValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }
func (durationValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	d, err := time.ParseDuration(req.ConfigValue.ValueString())
	if err != nil || d <= 0 {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid duration",
			fmt.Sprintf("%q is not a positive duration such as 90s, 15m or 720h.", req.ConfigValue.ValueString()))
	}
}

// cidrsValidator accepts an allow-list of CIDR blocks written as the
// server stores them (network address and prefix length: 10.0.0.0/8,
// 127.0.0.1/32), so the state never differs from the configuration.
type cidrsValidator struct{}

func (cidrsValidator) Description(context.Context) string {
	return "CIDR blocks in network form, such as 10.0.0.0/8 or 203.0.113.7/32"
}
func (v cidrsValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }
func (cidrsValidator) ValidateSet(_ context.Context, req validator.SetRequest, resp *validator.SetResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	elems := req.ConfigValue.Elements()
	if len(elems) > allowlist.MaxEntries {
		resp.Diagnostics.AddAttributeError(req.Path, "Too many CIDR blocks", fmt.Sprintf("at most %d, got %d", allowlist.MaxEntries, len(elems)))
	}
	for _, e := range elems {
		sv, ok := e.(types.String)
		if !ok || sv.IsUnknown() || sv.IsNull() {
			continue
		}
		got, err := allowlist.Parse([]string{sv.ValueString()})
		switch {
		case err != nil:
			resp.Diagnostics.AddAttributeError(req.Path, "Invalid CIDR block", err.Error())
		case got[0] != sv.ValueString():
			resp.Diagnostics.AddAttributeError(req.Path, "CIDR block not in network form",
				fmt.Sprintf("write %q as %q", sv.ValueString(), got[0]))
		}
	}
}
