package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// stringMap reads a map(string) attribute; null and unknown are nil.
func stringMap(ctx context.Context, m types.Map, diags *diag.Diagnostics) map[string]string {
	if m.IsNull() || m.IsUnknown() {
		return nil
	}
	out := map[string]string{}
	diags.Append(m.ElementsAs(ctx, &out, false)...)
	return out
}

// mapValue is the attribute value of m; an empty map is null when
// emptyIsNull, so a config that leaves the attribute out sees no change.
func mapValue(m map[string]string, emptyIsNull bool) types.Map {
	if len(m) == 0 && emptyIsNull {
		return types.MapNull(types.StringType)
	}
	v, _ := types.MapValueFrom(context.Background(), types.StringType, m)
	return v
}

func timeValue(t time.Time) types.String {
	if t.IsZero() {
		return types.StringNull()
	}
	return types.StringValue(t.UTC().Format(time.RFC3339))
}

// optString is the value of an optional string attribute the API
// reports as "" when unset: "" stays null when the prior value was null.
func optString(s string, prior types.String) types.String {
	if s == "" && prior.IsNull() {
		return types.StringNull()
	}
	return types.StringValue(s)
}

// stringSet reads a set of strings; nil when null or unknown.
func stringSet(ctx context.Context, s types.Set, diags *diag.Diagnostics) []string {
	if s.IsNull() || s.IsUnknown() {
		return nil
	}
	var out []string
	diags.Append(s.ElementsAs(ctx, &out, false)...)
	return out
}

// setValue is the attribute value of l; an empty list is null when
// emptyIsNull, so a config that leaves the attribute out sees no change.
func setValue(l []string, emptyIsNull bool) types.Set {
	if len(l) == 0 && emptyIsNull {
		return types.SetNull(types.StringType)
	}
	v, _ := types.SetValueFrom(context.Background(), types.StringType, l)
	return v
}
