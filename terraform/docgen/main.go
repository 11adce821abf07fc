// Command docgen writes the provider's markdown documentation from its
// schema, in the layout of the Terraform registry (the same as
// tfplugindocs, which needs the registry and so cannot run offline):
//
//	docs/index.md                          the provider block
//	docs/resources/<name>.md               one page per resource
//	docs/data-sources/<name>.md            one page per data source
//
// Each page takes its text from the schema's MarkdownDescription fields
// and its examples from examples/provider/provider.tf,
// examples/resources/<type>/resource.tf (+ import.sh) and
// examples/data-sources/<type>/data-source.tf; a missing example is an
// error. `go generate ./terraform/...` runs it; TestDocsUpToDate fails
// when the committed pages differ from what it would write.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	dschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	pschema "github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	rschema "github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	eddy "github.com/eddy-streams/eddy/terraform/provider"
)

func main() {
	docs := flag.String("docs", "docs", "directory to write the pages to")
	examples := flag.String("examples", "examples", "directory of the examples")
	flag.Parse()
	pages, err := generate(eddy.New("docs")(), *examples)
	if err != nil {
		log.Fatal(err)
	}
	if err := write(*docs, pages); err != nil {
		log.Fatal(err)
	}
}

// write replaces the generated pages under dir: stale pages of removed
// resources are deleted too.
func write(dir string, pages map[string][]byte) error {
	for _, sub := range []string{"resources", "data-sources"} {
		old, _ := filepath.Glob(filepath.Join(dir, sub, "*.md"))
		for _, f := range old {
			rel, _ := filepath.Rel(dir, f)
			if _, ok := pages[filepath.ToSlash(rel)]; !ok {
				if err := os.Remove(f); err != nil {
					return err
				}
			}
		}
	}
	for rel, b := range pages {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// field is one attribute or block of a schema, whatever its kind.
type field struct {
	name                          string
	desc                          string
	typ                           string
	required, optional, sensitive bool
	nested                        []field // a block's or nested attribute's attributes
	anchor                        string  // of the nested schema: "nestedblock--" or "nestedatt--"
}

// attribute is what every framework attribute (resource, data source,
// provider) has.
type attribute interface {
	IsRequired() bool
	IsOptional() bool
	IsComputed() bool
	IsSensitive() bool
	GetMarkdownDescription() string
	GetDescription() string
	GetType() attr.Type
}

func typeName(t attr.Type) string {
	switch t := t.(type) {
	case basetypes.MapType:
		return "Map of " + typeName(t.ElemType)
	case basetypes.ListType:
		return "List of " + typeName(t.ElemType)
	case basetypes.SetType:
		return "Set of " + typeName(t.ElemType)
	}
	switch {
	case t.Equal(types.StringType):
		return "String"
	case t.Equal(types.Int64Type), t.Equal(types.Float64Type), t.Equal(types.NumberType):
		return "Number"
	case t.Equal(types.BoolType):
		return "Boolean"
	}
	return t.String()
}

func fieldOf(name string, a attribute) (field, error) {
	d := a.GetMarkdownDescription()
	if d == "" {
		d = a.GetDescription()
	}
	f := field{name: name, desc: d, typ: typeName(a.GetType()),
		required: a.IsRequired(), optional: a.IsOptional(), sensitive: a.IsSensitive()}
	// List nested attributes (others have no use yet): their
	// attributes get a nested schema section of their own.
	var err error
	switch n := a.(type) {
	case dschema.ListNestedAttribute:
		f.nested, err = fields(n.NestedObject.Attributes)
	case rschema.ListNestedAttribute:
		f.nested, err = fields(n.NestedObject.Attributes)
	default:
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("%s: %w", name, err)
	}
	f.typ, f.anchor = "List of Object", "nestedatt--"
	return f, nil
}

func fields[A any](attrs map[string]A) ([]field, error) {
	var out []field
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		a, ok := any(attrs[name]).(attribute)
		if !ok {
			return nil, fmt.Errorf("attribute %s: %T is not supported by docgen", name, attrs[name])
		}
		f, err := fieldOf(name, a)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func resourceFields(s rschema.Schema) ([]field, error) {
	out, err := fields(s.Attributes)
	if err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(s.Blocks)) {
		b, ok := s.Blocks[name].(rschema.SingleNestedBlock)
		if !ok {
			return nil, fmt.Errorf("block %s: %T is not supported by docgen", name, s.Blocks[name])
		}
		nested, err := fields(b.Attributes)
		if err != nil {
			return nil, err
		}
		desc := b.MarkdownDescription
		if desc == "" && name == "timeouts" {
			desc = "How long to wait, as durations like `30s` or `10m`. `create` bounds the wait for the cluster to be ready (default `10m`)."
		}
		out = append(out, field{name: name, desc: desc, typ: "Block", optional: true, nested: nested, anchor: "nestedblock--"})
	}
	return out, nil
}

// page is the markdown of one resource, data source or the provider.
func page(title, kind, desc, example, lang string, fs []field, importExample string) []byte {
	var b bytes.Buffer
	first := desc
	if i := strings.Index(first, "\n\n"); i >= 0 {
		first = first[:i]
	}
	fmt.Fprintf(&b, "---\npage_title: %q\nsubcategory: \"\"\ndescription: |-\n  %s\n---\n\n",
		title+" "+kind+" - eddy", strings.ReplaceAll(first, "\n", "\n  "))
	if kind == "Provider" {
		fmt.Fprintf(&b, "# eddy Provider\n\n")
	} else {
		fmt.Fprintf(&b, "# %s (%s)\n\n", title, kind)
	}
	fmt.Fprintf(&b, "%s\n\n## Example Usage\n\n```%s\n%s```\n\n", desc, lang, example)
	fmt.Fprintf(&b, "## Schema\n")
	section := func(name string, keep func(field) bool, list []field) {
		var sel []field
		for _, f := range list {
			if keep(f) {
				sel = append(sel, f)
			}
		}
		if len(sel) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n### %s\n\n", name)
		for _, f := range sel {
			extra := ""
			if f.sensitive {
				extra = ", Sensitive"
			}
			if f.nested != nil {
				fmt.Fprintf(&b, "- `%s` (%s%s) %s (see [below for nested schema](#%s%s))\n", f.name, f.typ, extra, f.desc, f.anchor, f.name)
				continue
			}
			fmt.Fprintf(&b, "- `%s` (%s%s) %s\n", f.name, f.typ, extra, f.desc)
		}
	}
	sections := func(list []field) {
		section("Required", func(f field) bool { return f.required }, list)
		section("Optional", func(f field) bool { return f.optional }, list)
		section("Read-Only", func(f field) bool { return !f.required && !f.optional }, list)
	}
	sections(fs)
	for _, f := range fs {
		if f.nested == nil {
			continue
		}
		fmt.Fprintf(&b, "\n<a id=\"%s%s\"></a>\n### Nested Schema for `%s`\n", f.anchor, f.name, f.name)
		sections(f.nested)
	}
	if importExample != "" {
		fmt.Fprintf(&b, "\n## Import\n\nImport is supported using the following syntax:\n\n```shell\n%s```\n", importExample)
	}
	return b.Bytes()
}

func readExample(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("missing example %s: every resource and data source needs one", path)
	}
	s := string(b)
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s, err
}

// generate returns every page, keyed by its path under docs/.
func generate(p provider.Provider, examples string) (map[string][]byte, error) {
	ctx := context.Background()
	pages := map[string][]byte{}

	var ps provider.SchemaResponse
	p.Schema(ctx, provider.SchemaRequest{}, &ps)
	pfs, err := fields[pschema.Attribute](ps.Schema.Attributes)
	if err != nil {
		return nil, err
	}
	ex, err := readExample(filepath.Join(examples, "provider", "provider.tf"))
	if err != nil {
		return nil, err
	}
	pages["index.md"] = page("eddy", "Provider", ps.Schema.MarkdownDescription, ex, "terraform", pfs, "")

	var pm provider.MetadataResponse
	p.Metadata(ctx, provider.MetadataRequest{}, &pm)
	for _, newR := range p.Resources(ctx) {
		r := newR()
		var m resource.MetadataResponse
		r.Metadata(ctx, resource.MetadataRequest{ProviderTypeName: pm.TypeName}, &m)
		var s resource.SchemaResponse
		r.Schema(ctx, resource.SchemaRequest{}, &s)
		if s.Diagnostics.HasError() {
			return nil, fmt.Errorf("%s: schema: %v", m.TypeName, s.Diagnostics)
		}
		fs, err := resourceFields(s.Schema)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.TypeName, err)
		}
		dir := filepath.Join(examples, "resources", m.TypeName)
		ex, err := readExample(filepath.Join(dir, "resource.tf"))
		if err != nil {
			return nil, err
		}
		imp, err := readExample(filepath.Join(dir, "import.sh"))
		if err != nil {
			return nil, err
		}
		short := strings.TrimPrefix(m.TypeName, pm.TypeName+"_")
		pages["resources/"+short+".md"] = page(m.TypeName, "Resource", s.Schema.MarkdownDescription, ex, "terraform", fs, imp)
	}
	for _, newD := range p.DataSources(ctx) {
		d := newD()
		var m datasource.MetadataResponse
		d.Metadata(ctx, datasource.MetadataRequest{ProviderTypeName: pm.TypeName}, &m)
		var s datasource.SchemaResponse
		d.Schema(ctx, datasource.SchemaRequest{}, &s)
		fs, err := fields[dschema.Attribute](s.Schema.Attributes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.TypeName, err)
		}
		ex, err := readExample(filepath.Join(examples, "data-sources", m.TypeName, "data-source.tf"))
		if err != nil {
			return nil, err
		}
		short := strings.TrimPrefix(m.TypeName, pm.TypeName+"_")
		pages["data-sources/"+short+".md"] = page(m.TypeName, "Data Source", s.Schema.MarkdownDescription, ex, "terraform", fs, "")
	}
	return pages, nil
}
