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
