package e2e

// Helpers for the operations tests (ops_*_test.go): the echo backend, raw
// HTTP requests, tool calls that report how they ended, admin key
// creation, /metrics scraping and the OpenAPI document's operations.
//
// NOTE: this file is a reconstruction. The original was overwritten by
// mistake by another session (the audit/backup work); it was rebuilt from
// every call site in ops_*_test.go. Its author should compare it with
// their own copy and replace it if theirs differs.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/paygate/paygate/internal/testenv"
)

// echoServer returns the --server value running the benchmark echo server
// (one tool, echo) over stdio, answering each tools/call after delay.
func echoServer(t *testing.T, delay time.Duration) string {
	t.Helper()
	s := testenv.BuildGo(t, "github.com/paygate/paygate/bench/echo") + " --stdio"
	if delay > 0 {
		s += " --delay " + delay.String()
	}
	return s
}

// writeFileAtomic writes v as a JSON config file through a temporary file
// and a rename, so a gateway reloading it never reads half a file.
func writeFileAtomic(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cfg-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}

// httpResult is a whole HTTP answer.
type httpResult struct {
	status int
	header http.Header
	body   []byte
}

// try sends a request with headers and a body ("" for none) and reads the
// whole answer; err is a transport error.
func (g *gateway) try(method, path string, headers map[string]string, body string) (httpResult, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.URL+path, rd)
	if err != nil {
		return httpResult{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return httpResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return httpResult{status: resp.StatusCode, header: resp.Header, body: b}, err
}

// raw is try that fails the test on a transport error.
func (g *gateway) raw(method, path string, headers map[string]string, body string) httpResult {
	g.t.Helper()
	r, err := g.try(method, path, headers, body)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// callTool calls tool with key through client. ok means a successful
// result: HTTP 200, a JSON-RPC result, not isError. code and body are the
// HTTP status and the JSON-RPC message (the last data of an SSE answer);
// err is a transport error (connection refused or cut).
func callTool(client *http.Client, url, key, tool string, args map[string]any) (ok bool, code int, body []byte, err error) {
	params := map[string]any{"name": tool}
	if args != nil {
		params["arguments"] = args
	}
	reqBody, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
	req, err := http.NewRequest("POST", url+"/mcp", bytes.NewReader(reqBody))
	if err != nil {
		return false, 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("X-API-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		return false, 0, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return false, resp.StatusCode, body, err
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body = lastSSEData(body)
	}
	var msg struct {
		Result *struct {
			IsError bool `json:"isError"`
		} `json:"result"`
		Error json.RawMessage `json:"error"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &msg) != nil {
		return false, resp.StatusCode, body, nil
	}
	return msg.Result != nil && len(msg.Error) == 0 && !msg.Result.IsError, resp.StatusCode, body, nil
}

// createAdminKey creates an admin key with role through POST /admin/keys
// and returns its secret.
func (g *gateway) createAdminKey(role string) string {
	g.t.Helper()
	var out struct {
		Key string `json:"key"`
	}
	if code := g.admin("POST", "/admin/keys", map[string]any{"name": "e2e-" + role, "role": role}, &out); code != http.StatusCreated || out.Key == "" {
		g.t.Fatalf("POST /admin/keys (%s): %d", role, code)
	}
	return out.Key
}

// scrape reads /metrics with the Prometheus text parser.
func (g *gateway) scrape() map[string]*dto.MetricFamily {
	g.t.Helper()
	r := g.raw("GET", "/metrics", nil, "")
	if r.status != http.StatusOK {
		g.t.Fatalf("GET /metrics: %d", r.status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		g.t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// metricValue sums the series of family name whose labels include labels
// (a counter's or gauge's value, a histogram's or summary's count). ok is
// false when no series matches.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	fam := fams[name]
	if fam == nil {
		return 0, false
	}
	var sum float64
	found := false
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range labels {
			if have[k] != v {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Summary != nil:
			sum += float64(m.GetSummary().GetSampleCount())
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum, found
}

// openAPIOp is one operation of the OpenAPI document.
type openAPIOp struct {
	Method, Path string
	Role         string // x-required-role; "" when no admin role is needed
	security     []map[string]any
}

// public reports whether the operation can be called without a
// credential: no security requirement, or an empty (anonymous) one.
func (o openAPIOp) public() bool {
	if o.Role != "" {
		return false
	}
	if len(o.security) == 0 {
		return true
	}
	return slices.ContainsFunc(o.security, func(req map[string]any) bool { return len(req) == 0 })
}

// operations lists the document's operations, sorted by path and method.
func operations(t *testing.T, doc []byte) []openAPIOp {
	t.Helper()
	var d struct {
		Paths map[string]map[string]struct {
			Security []map[string]any `json:"security"`
			Role     string           `json:"x-required-role"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatalf("the OpenAPI document is not JSON: %v", err)
	}
	var ops []openAPIOp
	for path, item := range d.Paths {
		for method, op := range item {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
			default:
				continue // parameters, summary, ...
			}
			ops = append(ops, openAPIOp{Method: strings.ToUpper(method), Path: path, Role: op.Role, security: op.Security})
		}
	}
	slices.SortFunc(ops, func(a, b openAPIOp) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
	return ops
}

// validateOpenAPIDoc validates doc against the OpenAPI Initiative's 3.1
// schema (internal/admin/testdata/oas-3.1-schema.json) and compiles each
// component schema as JSON Schema 2020-12.
func validateOpenAPIDoc(t *testing.T, doc []byte) error {
	t.Helper()
	meta, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "internal", "admin", "testdata", "oas-3.1-schema.json"))
	if err != nil {
		return err
	}
	metaDoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(meta))
	if err != nil {
		return err
	}
	id, _ := metaDoc.(map[string]any)["$id"].(string)
	c := jsonschema.NewCompiler()
	if err := c.AddResource(id, metaDoc); err != nil {
		return err
	}
	sch, err := c.Compile(id)
	if err != nil {
		return fmt.Errorf("compile the OpenAPI meta-schema: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	if err := sch.Validate(inst); err != nil {
		return err
	}
	const docURL = "https://paygate.invalid/openapi.json"
	sc := jsonschema.NewCompiler()
	sc.DefaultDraft(jsonschema.Draft2020)
	if err := sc.AddResource(docURL, inst); err != nil {
		return err
	}
	comps, _ := inst.(map[string]any)["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	var errs []error
	for name := range schemas {
		if _, err := sc.Compile(docURL + "#/components/schemas/" + name); err != nil {
			errs = append(errs, fmt.Errorf("component schema %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
