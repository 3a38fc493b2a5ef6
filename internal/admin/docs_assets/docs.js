// docs.js renders this server's /openapi.json: operations grouped by tag,
// their parameters, request and response examples derived from the
// schemas, and a form that sends a request with the keys typed above.
//
// Every piece of the document reaches the page through textContent or
// setAttribute on elements this script creates; nothing is parsed as HTML.
(function () {
  "use strict";

  var METHOD_ORDER = { get: 0, post: 1, put: 2, patch: 3, delete: 4 };
  var TIMEOUT_MS = 15000;
  var doc = null;

  function byId(id) { return document.getElementById(id); }

  // el builds an element: attrs are set with setAttribute (class, id,
  // data-*, type, ...), children are nodes or strings (text nodes).
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (attrs[k] !== undefined && attrs[k] !== null) node.setAttribute(k, String(attrs[k]));
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return node;
  }

  function slug(s) { return String(s).toLowerCase().replace(/[^a-z0-9]+/g, "-"); }

  function pretty(v) {
    try { return JSON.stringify(v, null, 2); } catch (e) { return String(v); }
  }

  // resolve follows a local JSON pointer ("#/components/schemas/Key").
  function resolve(ref) {
    if (typeof ref !== "string" || ref.indexOf("#/") !== 0) return null;
    var node = doc;
    var parts = ref.slice(2).split("/");
    for (var i = 0; i < parts.length && node; i++) {
      node = node[parts[i].replace(/~1/g, "/").replace(/~0/g, "~")];
    }
    return node || null;
  }

  // example makes a value of a schema, as an illustration.
  function example(schema, depth) {
    depth = depth || 0;
    if (!schema || typeof schema !== "object" || depth > 8) return null;
    if (schema.$ref) return example(resolve(schema.$ref), depth + 1);
    if (Object.prototype.hasOwnProperty.call(schema, "example")) return schema.example;
    if (Array.isArray(schema.examples) && schema.examples.length) return schema.examples[0];
    if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
    if (Array.isArray(schema.oneOf) && schema.oneOf.length) return example(schema.oneOf[0], depth + 1);
    if (Array.isArray(schema.anyOf) && schema.anyOf.length) return example(schema.anyOf[0], depth + 1);
    var type = schema.type;
    if (Array.isArray(type)) type = type.filter(function (t) { return t !== "null"; })[0] || "null";
    if (!type && schema.properties) type = "object";
    switch (type) {
      case "object":
        var out = {};
        Object.keys(schema.properties || {}).forEach(function (k) { out[k] = example(schema.properties[k], depth + 1); });
        return out;
      case "array":
        var item = example(schema.items, depth + 1);
        return item === null ? [] : [item];
      case "string":
        if (schema.format === "date-time") return "2026-01-01T00:00:00Z";
        return "string";
      case "integer":
      case "number":
        return typeof schema.minimum === "number" ? schema.minimum : 0;
      case "boolean":
        return false;
      default:
        return null;
    }
  }

  // collect lists every operation of the document.
  function collect() {
    var ops = [];
    Object.keys(doc.paths || {}).forEach(function (path) {
      var item = doc.paths[path];
      Object.keys(item).forEach(function (method) {
        if (!(method in METHOD_ORDER)) return;
        ops.push({ method: method, path: path, op: item[method] });
      });
    });
    ops.sort(function (a, b) {
      return a.path < b.path ? -1 : a.path > b.path ? 1 : METHOD_ORDER[a.method] - METHOD_ORDER[b.method];
    });
    return ops;
  }

  // access describes who may call an operation.
  function access(op) {
    if (op["x-required-role"]) return "admin key: " + op["x-required-role"];
    var sec = op.security || [];
    if (sec.length === 0) return "public";
    var anonymous = sec.some(function (s) { return Object.keys(s).length === 0; });
    var names = sec.map(function (s) { return Object.keys(s)[0]; }).filter(Boolean);
    return (anonymous ? "API key for priced and non-free methods" : "API key") + " (" + names.join(" or ") + ")";
  }

  function paramTable(params) {
    var table = el("table", null,
      el("thead", null, el("tr", null, el("th", null, "name"), el("th", null, "in"), el("th", null, "type"),
        el("th", null, "required"), el("th", null, "description"))));
    var tbody = el("tbody");
    params.forEach(function (p) {
      var schema = p.schema || {};
      var type = Array.isArray(schema.type) ? schema.type.join(" | ") : (schema.type || "");
      if (Array.isArray(schema.enum)) type += " (" + schema.enum.join(", ") + ")";
      tbody.appendChild(el("tr", null, el("td", { "class": "path" }, p.name), el("td", null, p["in"]), el("td", null, type),
        el("td", null, p.required ? "yes" : ""), el("td", null, p.description || "")));
    });
    table.appendChild(tbody);
    return table;
  }

  function requestExample(o) {
    if (o.path === "/mcp" && o.method === "post") {
      return { jsonrpc: "2.0", id: 1, method: "tools/list" };
    }
    var rb = o.op.requestBody;
    if (rb && rb.$ref) rb = resolve(rb.$ref);
    var media = rb && rb.content && rb.content["application/json"];
    return media ? example(media.schema) : null;
  }

  function responsesBlock(op) {
    var box = el("div");
    Object.keys(op.responses || {}).sort().forEach(function (status) {
      var r = op.responses[status];
      if (r && r.$ref) r = resolve(r.$ref) || {};
      var types = Object.keys((r && r.content) || {});
      box.appendChild(el("h3", null, status + " " + ((r && r.description) || "") + (types.length ? " — " + types.join(", ") : "")));
      var json = r && r.content && r.content["application/json"];
      if (json && status.charAt(0) === "2") box.appendChild(el("pre", null, pretty(example(json.schema))));
    });
    return box;
  }

  // tryForm builds the "try it" form of an operation.
  function tryForm(o) {
    var form = el("form", { "class": "try" });
    var inputs = [];
    (o.op.parameters || []).forEach(function (p) {
      var input = el("input", { type: "text", name: p.name, placeholder: p.required ? "required" : "optional", spellcheck: "false" });
      inputs.push({ param: p, input: input });
      form.appendChild(el("div", { "class": "row" }, el("label", null, p.name + " (" + p["in"] + ")", input)));
    });
    var body = null;
    if (o.op.requestBody) {
      body = el("textarea", { spellcheck: "false", "aria-label": "request body" });
      var ex = requestExample(o);
      body.value = ex === null ? "{}" : pretty(ex);
      form.appendChild(body);
    }
    var send = el("button", { type: "submit" }, "Send " + o.method.toUpperCase() + " " + o.path);
    var out = el("div", { "class": "result" });
    form.appendChild(el("div", { "class": "row" }, send));
    form.appendChild(out);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var query = new URLSearchParams();
      var headers = { "Accept": "application/json, text/event-stream" };
      inputs.forEach(function (x) {
        var v = x.input.value;
        if (v === "") return;
        if (x.param["in"] === "header") headers[x.param.name] = v; else query.append(x.param.name, v);
      });
      var adminKey = byId("admin-key").value.trim();
      var apiKey = byId("api-key").value.trim();
      if (adminKey) headers["X-Admin-Key"] = adminKey;
      if (apiKey) headers["X-API-Key"] = apiKey;
      var init = { method: o.method.toUpperCase(), headers: headers, credentials: "omit", cache: "no-store" };
      if (body) {
        headers["Content-Type"] = "application/json";
        init.body = body.value;
      }
      var ctrl = new AbortController();
      var timer = setTimeout(function () { ctrl.abort(); }, TIMEOUT_MS);
      init.signal = ctrl.signal;
      var url = o.path + (query.toString() ? "?" + query.toString() : "");
      out.replaceChildren(el("p", { "class": "muted" }, "Sending " + init.method + " " + url + " …"));
      fetch(url, init).then(function (resp) {
        return resp.text().then(function (text) {
          var shown = text;
          if ((resp.headers.get("Content-Type") || "").indexOf("application/json") === 0) {
            try { shown = pretty(JSON.parse(text)); } catch (e) { /* show as received */ }
          }
          var hdrs = ["X-Request-Id", "Content-Type", "Retry-After", "X-Credits-Remaining", "Mcp-Session-Id"]
            .filter(function (h) { return resp.headers.get(h); })
            .map(function (h) { return h + ": " + resp.headers.get(h); }).join("\n");
          out.replaceChildren(
            el("h3", null, "HTTP " + resp.status + " " + resp.statusText),
            el("pre", null, hdrs),
            el("pre", null, shown));
        });
      }).catch(function (err) {
        out.replaceChildren(el("p", { "class": "error" }, "Request failed: " + (err && err.message ? err.message : String(err))));
      }).finally(function () { clearTimeout(timer); });
    });
    return form;
  }

  function renderBody(o, container) {
    var op = o.op;
    if (op.description) container.appendChild(el("p", null, op.description));
    container.appendChild(el("p", { "class": "muted" }, "Access: " + access(op) + (op.operationId ? " · operationId " + op.operationId : "")));
    if (op.parameters && op.parameters.length) {
      container.appendChild(el("h3", null, "Parameters"));
      container.appendChild(paramTable(op.parameters));
    }
    var reqEx = op.requestBody ? requestExample(o) : null;
    if (op.requestBody) {
      container.appendChild(el("h3", null, "Request body (example)"));
      container.appendChild(el("pre", null, pretty(reqEx)));
    }
    container.appendChild(el("h3", null, "Responses"));
    container.appendChild(responsesBlock(op));
    container.appendChild(el("h3", null, "Try it"));
    container.appendChild(tryForm(o));
  }

  function renderOp(o) {
    var op = o.op;
    var details = el("details", {
      "class": "op", id: "op-" + (op.operationId || slug(o.method + o.path)),
      "data-method": o.method, "data-path": o.path,
      "data-search": (o.method + " " + o.path + " " + (op.summary || "") + " " + (op.tags || []).join(" ")).toLowerCase()
    });
    details.appendChild(el("summary", null,
      el("span", { "class": "method " + o.method }, o.method.toUpperCase()),
      el("span", { "class": "path" }, o.path),
      el("span", { "class": "summary" }, op.summary || ""),
      el("span", { "class": "role" }, op["x-required-role"] || (op.security && op.security.length ? "key" : "public"))));
    var body = el("div", { "class": "body" });
    details.appendChild(body);
    var rendered = false;
    details.addEventListener("toggle", function () {
      if (details.open && !rendered) {
        rendered = true;
        renderBody(o, body);
      }
    });
    return details;
  }

  function applyFilter() {
    var q = byId("filter").value.trim().toLowerCase();
    document.querySelectorAll("section.tag").forEach(function (section) {
      var any = false;
      section.querySelectorAll("details.op").forEach(function (d) {
        var show = !q || d.getAttribute("data-search").indexOf(q) >= 0;
        d.hidden = !show;
        any = any || show;
      });
      section.hidden = !any;
    });
  }

  function render(d) {
    doc = d;
    var ops = collect();
    var info = d.info || {};
    byId("title").textContent = info.title || "API";
    byId("version").textContent = "OpenAPI " + (d.openapi || "?") + " · version " + (info.version || "?") + " · " +
      ops.length + " operations";
    var groups = {};
    ops.forEach(function (o) {
      var tag = (o.op.tags && o.op.tags[0]) || "other";
      (groups[tag] = groups[tag] || []).push(o);
    });
    var tags = Object.keys(groups).sort();
    var nav = byId("tags");
    var main = byId("operations");
    nav.replaceChildren();
    main.replaceChildren();
    tags.forEach(function (tag) {
      var id = "tag-" + slug(tag);
      nav.appendChild(el("a", { href: "#" + id }, tag + " (" + groups[tag].length + ")"));
      var section = el("section", { "class": "tag", id: id, "data-tag": tag }, el("h2", null, tag));
      groups[tag].forEach(function (o) { section.appendChild(renderOp(o)); });
      main.appendChild(section);
    });
    byId("filter").addEventListener("input", applyFilter);
    document.body.setAttribute("data-rendered", String(ops.length));
  }

  function start() {
    fetch("/openapi.json", { headers: { Accept: "application/json" }, credentials: "omit" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(render)
      .catch(function (err) {
        var s = byId("status");
        s.textContent = "Could not load /openapi.json: " + (err && err.message ? err.message : String(err));
        s.className = "error";
      });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
