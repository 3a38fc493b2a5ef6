package backend

import (
	"bytes"
	"encoding/json"
)

// progressTokenKey is searched for in params before anything is decoded:
// requests without it are forwarded byte for byte.
var progressTokenKey = []byte(`"progressToken"`)

// memberSpan returns where the value of the top-level member key of the
// JSON object obj starts and ends, so it can be replaced without
// re-encoding the rest of the object.
func memberSpan(obj []byte, key string) (start, end int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, 0, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return 0, 0, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return 0, 0, false
		}
		if k, _ := t.(string); k == key {
			end = int(dec.InputOffset())
			return end - len(v), end, true
		}
	}
	return 0, 0, false
}

// metaProgressToken finds params._meta.progressToken.
func metaProgressToken(params []byte) (start, end int, ok bool) {
	ms, me, ok := memberSpan(params, "_meta")
	if !ok {
		return 0, 0, false
	}
	ts, te, ok := memberSpan(params[ms:me], "progressToken")
	if !ok {
		return 0, 0, false
	}
	return ms + ts, ms + te, true
}

// splice returns a copy of b with b[start:end] replaced by v.
func splice(b []byte, start, end int, v []byte) []byte {
	out := make([]byte, 0, len(b)-(end-start)+len(v))
	out = append(out, b[:start]...)
	out = append(out, v...)
	return append(out, b[end:]...)
}
