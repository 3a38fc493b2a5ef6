package admin

import (
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/paygate/paygate/internal/store"
)

// OpenAPI returns an OpenAPI 3.1 document of the route table, ready to be
// marshalled to JSON. Schemas come from the Go types of Doc.Request and
// Doc.Response.
func (a *API) OpenAPI(title, version string) map[string]any {
	g := &schemaGen{schemas: map[string]any{}, statuses: map[int]bool{}}
	paths := map[string]any{}
	for _, rt := range a.routes {
		path := openAPIPath(rt.Pattern)
		item, _ := paths[path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[path] = item
		}
		item[strings.ToLower(rt.Method)] = g.operation(rt)
	}
	errorSchema := map[string]any{
		"type":     "object",
		"required": []string{"error", "code"},
		"properties": map[string]any{
			"error": map[string]any{"type": "string"},
			"code": map[string]any{"type": "string", "enum": []string{CodeBadRequest, CodeUnauthorized, CodeForbidden,
				CodeNotFound, CodeMethodNotAllowed, CodeConflict, CodePayloadTooLarge, CodeRateLimited, CodeUnavailable, CodeInternal}},
			"field": map[string]any{"type": "string"},
		},
	}
	g.schemas["Error"] = errorSchema
	responses := map[string]any{}
	for code := range g.statuses {
		responses[strconv.Itoa(code)] = map[string]any{"description": http.StatusText(code),
			"content": map[string]any{"application/json": map[string]any{
				"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}}
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info":    map[string]any{"title": title, "version": version},
		"paths":   paths,
		"components": map[string]any{
			"schemas":   g.schemas,
			"responses": responses,
			"securitySchemes": map[string]any{
				"adminKey": map[string]any{"type": "apiKey", "in": "header", "name": "X-Admin-Key"},
				"apiKey":   map[string]any{"type": "apiKey", "in": "header", "name": "X-API-Key"},
				"bearer":   map[string]any{"type": "http", "scheme": "bearer"},
			},
		},
	}
}

// errorStatuses are the error responses every operation documents.
var errorStatuses = []int{400, 401, 403, 404, 409, 413, 500}

// schemaGen collects named schemas for components.schemas, and the error
// statuses operations refer to for components.responses.
type schemaGen struct {
	schemas  map[string]any
	statuses map[int]bool
}

// openAPIPath is the OpenAPI path of a ServeMux pattern: "/{$}" (the root
// only) is "/", and a trailing wildcard "{name...}" is "{name}".
func openAPIPath(pattern string) string {
	p := strings.TrimSuffix(pattern, "{$}")
	return strings.ReplaceAll(p, "...}", "}")
}

func (g *schemaGen) operation(rt Route) map[string]any {
	d := rt.Doc
	op := map[string]any{
		"summary":     d.Summary,
		"tags":        []string{d.Tag},
		"operationId": operationID(rt),
	}
	if d.Description != "" {
		op["description"] = d.Description
	}
	switch rt.Role {
	case RolePublic:
		op["security"] = []any{}
	case RoleGateway: // the gateway decides per JSON-RPC method; free methods need no key
		op["security"] = []any{map[string]any{"apiKey": []string{}}, map[string]any{"bearer": []string{}}, map[string]any{}}
	case RoleAPIKey:
		op["security"] = []any{map[string]any{"apiKey": []string{}}, map[string]any{"bearer": []string{}}}
	default:
		op["security"] = []any{map[string]any{"adminKey": []string{}}}
		op["x-required-role"] = string(rt.Role)
	}
	if len(d.Query) > 0 {
		var ps []any
		for _, p := range d.Query {
			s := map[string]any{"type": p.Type}
			if len(p.Enum) > 0 {
				s["enum"] = p.Enum
			}
			in := p.In
			if in == "" {
				in = "query"
			}
			param := map[string]any{"name": p.Name, "in": in, "required": p.Required, "schema": s}
			if p.Description != "" {
				param["description"] = p.Description
			}
			ps = append(ps, param)
		}
		op["parameters"] = ps
	}
	if d.Request != nil {
		op["requestBody"] = map[string]any{
			"required": true,
			"content":  map[string]any{"application/json": map[string]any{"schema": g.schemaOf(reflect.TypeOf(d.Request))}},
		}
	}
	status := d.Status
	if status == 0 {
		status = http.StatusOK
	}
	text := map[string]any{"schema": map[string]any{"type": "string"}}
	content := map[string]any{}
	if d.ContentType != "" {
		content[d.ContentType] = text
	} else {
		content["application/json"] = map[string]any{"schema": g.schemaOf(reflect.TypeOf(d.Response))}
	}
	if d.CSV {
		content["text/csv"] = text
	}
	for _, ct := range d.Also {
		content[ct] = text
	}
	success := map[string]any{"description": http.StatusText(status)}
	if status != http.StatusNoContent {
		success["content"] = content
	}
	responses := map[string]any{strconv.Itoa(status): success}
	errs := d.Errors
	if errs == nil {
		errs = errorStatuses
	}
	for _, code := range errs {
		g.statuses[code] = true
		responses[strconv.Itoa(code)] = map[string]any{"$ref": "#/components/responses/" + strconv.Itoa(code)}
	}
	op["responses"] = responses
	return op
}

// operationID names an operation from its method and path:
// "POST /keys/revoke" is "postKeysRevoke", "GET /.well-known/mcp.json" is
// "getWellKnownMcpJson" and "GET /" is "getRoot".
func operationID(rt Route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.Method))
	parts := strings.FieldsFunc(openAPIPath(rt.Pattern), func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	})
	if len(parts) == 0 {
		parts = []string{"root"}
	}
	for _, part := range parts {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// schemaOf derives a JSON schema from a Go type, following its json tags
// and promoting embedded structs as encoding/json does. Named structs go
// to components.schemas and are referenced.
func (g *schemaGen) schemaOf(t reflect.Type) map[string]any {
	if t == nil {
		return map[string]any{}
	}
	switch {
	case t == amountType || t == countType:
		return map[string]any{"type": "integer", "minimum": 0}
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == reflect.TypeFor[store.AdminRole]():
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		s := g.schemaOf(t.Elem())
		if typ, ok := s["type"].(string); ok {
			s["type"] = []string{typ, "null"}
			return s
		}
		return map[string]any{"oneOf": []any{s, map[string]any{"type": "null"}}}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 { // json.RawMessage: any value
			return map[string]any{}
		}
		return map[string]any{"type": "array", "items": g.schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schemaOf(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		name := schemaName(t)
		ref := map[string]any{"$ref": "#/components/schemas/" + name}
		if _, ok := g.schemas[name]; ok {
			return ref
		}
		g.schemas[name] = map[string]any{} // placeholder: recursive types
		props := map[string]any{}
		for _, f := range reflect.VisibleFields(t) {
			if f.Type == setType || !f.IsExported() && !f.Anonymous {
				continue
			}
			tag := f.Tag.Get("json")
			if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
				continue // promoted
			}
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			props[name] = g.schemaOf(f.Type)
		}
		g.schemas[name] = map[string]any{"type": "object", "properties": props}
		return ref
	}
	return map[string]any{}
}

// schemaName is a component name for a struct type: its Go name with the
// first letter upper-cased ("keySpec" is "KeySpec").
func schemaName(t reflect.Type) string {
	n := t.Name()
	if n == "" {
		return "Anonymous"
	}
	return strings.ToUpper(n[:1]) + n[1:]
}
