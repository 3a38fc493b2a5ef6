package admin

import (
	"embed"
	"net/http"
)

// docsAssets is the API viewer: a small dependency-free page that renders
// /openapi.json. Everything it needs is embedded; nothing loads from
// elsewhere.
//
//go:embed docs_assets/index.html docs_assets/docs.js docs_assets/docs.css
var docsAssets embed.FS

// docsCSP confines the viewer to this server: its own script and style,
// requests to this origin only, no framing.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (a *API) docsRoutes() []Route {
	const tag = "public"
	asset := func(name, ctype string) func(http.ResponseWriter, *http.Request) error {
		body, err := docsAssets.ReadFile("docs_assets/" + name)
		if err != nil {
			panic("admin: missing embedded asset " + name) // a build defect
		}
		return a.limited(func(w http.ResponseWriter, r *http.Request) error {
			h := w.Header()
			h.Set("Content-Security-Policy", docsCSP)
			h.Set("Cache-Control", "no-cache")
			h.Set("Referrer-Policy", "no-referrer")
			writeText(w, http.StatusOK, ctype, body)
			return nil
		})
	}
	return []Route{
		{Method: "GET", Pattern: "/openapi.json", Role: RolePublic, Handler: a.limited(a.serveOpenAPI), Doc: Doc{
			Tag: tag, Summary: "This API as an OpenAPI 3.1 document, generated from the route table the server uses",
			Response: map[string]any{}, Errors: publicErrors,
		}},
		{Method: "GET", Pattern: "/docs", Role: RolePublic, Handler: asset("index.html", "text/html; charset=utf-8"), Doc: Doc{
			Tag: tag, Summary: "Interactive API documentation (renders /openapi.json; try requests with your keys)",
			Response: "", ContentType: "text/html", Errors: publicErrors,
		}},
		{Method: "GET", Pattern: "/docs/docs.js", Role: RolePublic, Handler: asset("docs.js", "text/javascript; charset=utf-8"), Doc: Doc{
			Tag: tag, Summary: "Script of the API documentation page",
			Response: "", ContentType: "text/javascript", Errors: publicErrors,
		}},
		{Method: "GET", Pattern: "/docs/docs.css", Role: RolePublic, Handler: asset("docs.css", "text/css; charset=utf-8"), Doc: Doc{
			Tag: tag, Summary: "Style sheet of the API documentation page",
			Response: "", ContentType: "text/css", Errors: publicErrors,
		}},
	}
}

// serveOpenAPI answers the document of the route table. The table never
// changes after New, so it is rendered once.
func (a *API) serveOpenAPI(w http.ResponseWriter, r *http.Request) error {
	a.ops.openapiOnce.Do(func() {
		b, err := jsonMarshal(a.OpenAPI("paygate", a.rt.Version))
		if err != nil {
			panic("admin: OpenAPI document does not marshal: " + err.Error()) // a programming error
		}
		a.ops.openapi = b
	})
	w.Header().Set("Cache-Control", "no-cache")
	writeText(w, http.StatusOK, "application/json; charset=utf-8", a.ops.openapi)
	return nil
}
