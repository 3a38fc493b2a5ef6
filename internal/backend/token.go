package backend

import (
	"github.com/paygate/paygate/internal/mcp"
)

// progressTokenKey is searched for in params before anything is decoded:
// requests without it are forwarded byte for byte.
var progressTokenKey = []byte(`"progressToken"`)

// metaProgressToken finds params._meta.progressToken.
func metaProgressToken(params []byte) (start, end int, ok bool) {
	ms, me, ok := mcp.MemberSpan(params, "_meta")
	if !ok {
		return 0, 0, false
	}
	ts, te, ok := mcp.MemberSpan(params[ms:me], "progressToken")
	if !ok {
		return 0, 0, false
	}
	return ms + ts, ms + te, true
}
