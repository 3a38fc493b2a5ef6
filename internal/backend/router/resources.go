package router

import (
	"regexp"
	"strings"
)

// Resources are addressed by URI, which the router does not rewrite: URIs
// are already global names, and clients keep them. So a resources/read (or
// subscribe, or a completion for a resource template) goes to the backend
// that listed the URI, else to the first whose URI template matches it.

// uriTemplate matches URIs against an RFC 6570 template, loosely: every
// expression matches what its expansion could produce.
type uriTemplate struct {
	raw string
	re  *regexp.Regexp
}

// compileTemplate builds a matcher for t; nil when t is not a template.
func compileTemplate(t string) *uriTemplate {
	var b strings.Builder
	b.WriteString("^")
	rest := t
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			b.WriteString(regexp.QuoteMeta(rest))
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil
		}
		b.WriteString(regexp.QuoteMeta(rest[:open]))
		expr := rest[open+1 : open+end]
		rest = rest[open+end+1:]
		op := byte(0)
		if expr != "" {
			op = expr[0]
		}
		switch op {
		case '+':
			b.WriteString(`.*`)
		case '#':
			b.WriteString(`(#.*)?`)
		case '.':
			b.WriteString(`(\.[^/?#]*)*`)
		case '/':
			b.WriteString(`(/[^/?#]*)*`)
		case ';':
			b.WriteString(`(;[^/?#]*)*`)
		case '?':
			b.WriteString(`(\?[^#]*)?`)
		case '&':
			b.WriteString(`(&[^#]*)?`)
		default:
			b.WriteString(`[^/?#]*`)
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil
	}
	return &uriTemplate{raw: t, re: re}
}

func (t *uriTemplate) match(uri string) bool { return t.re.MatchString(uri) }
