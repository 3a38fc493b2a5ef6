package admin

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestOpenAPI(t *testing.T) {
	f := newFixture(t)
	doc := f.api.OpenAPI("paygate admin API", "test")
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	paths := doc["paths"].(map[string]any)
	for _, rt := range f.api.Routes() {
		item, _ := paths[rt.Pattern].(map[string]any)
		if item == nil || item[map[string]string{"GET": "get", "POST": "post", "DELETE": "delete"}[rt.Method]] == nil {
			t.Errorf("no operation for %s %s", rt.Method, rt.Pattern)
		}
	}
	create := paths["/keys"].(map[string]any)["post"].(map[string]any)
	ref := create["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)["$ref"]
	if ref != "#/components/schemas/KeySpec" {
		t.Fatalf("POST /keys request schema ref = %v", ref)
	}
	schema := doc["components"].(map[string]any)["schemas"].(map[string]any)["KeySpec"].(map[string]any)
	props := schema["properties"].(map[string]any)
	if props["credits"].(map[string]any)["type"] != "integer" || props["tags"] == nil || props["quota"] == nil {
		t.Fatalf("POST /keys request schema = %v", schema)
	}
	golden := filepath.Join("testdata", "openapi.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestOpenAPI -update)", err)
	}
	if !bytes.Equal(want, b) {
		t.Fatalf("OpenAPI document differs from %s; run go test -run TestOpenAPI -update and review the diff", golden)
	}
}
