package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/credits"
)

// ignoredFields are request fields paygate-mcp documents for features
// paygate does not have yet. They are accepted (so existing scripts keep
// working), have no effect, and are listed in the response's "ignored"
// member. Any other unknown field is refused.
var ignoredFields = map[string]bool{
	"autoTopup":     true,
	"template":      true,
	"group":         true,
	"teamId":        true,
	"webhookUrl":    true,
	"webhookSecret": true,
}

// fieldSet records which members a decoded JSON object had, with their raw
// values, so handlers can tell absent from null from a value. A request
// struct gets one by declaring a field of this type tagged `json:"-"`.
type fieldSet map[string]json.RawMessage

func (f fieldSet) has(name string) bool { _, ok := f[name]; return ok }

func (f fieldSet) null(name string) bool { raw, ok := f[name]; return ok && isNull(raw) }

func isNull(raw []byte) bool { return string(bytes.TrimSpace(raw)) == "null" }

// count is a JSON count (calls, seconds): a whole number from 0 to
// credits.Max, with the same refusals as credits.Amount.
type count int64

// UnmarshalJSON implements json.Unmarshaler.
func (c *count) UnmarshalJSON(b []byte) error {
	n, err := credits.Parse(b)
	if err != nil {
		return err
	}
	*c = count(n)
	return nil
}

// decode reads r's body, a JSON object, into dst (a pointer to a struct).
// Errors name the field at fault; unknown fields are refused except
// ignoredFields, which are recorded for the response.
func decode(r *http.Request, dst any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err
		}
		return badRequest("reading request body: %v", err)
	}
	ignored, err := decodeJSON(body, dst, "")
	rc := state(r)
	rc.ignored = append(rc.ignored, ignored...)
	return err
}

// decodeJSON decodes one JSON object into dst; path prefixes field names
// in errors ("operations[3]"). An empty document is an empty object.
func decodeJSON(data []byte, dst any, path string) (ignored []string, err error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		data = []byte("{}")
	}
	d := &decoder{}
	err = d.object(data, reflect.ValueOf(dst).Elem(), path)
	return d.ignored, err
}

type decoder struct{ ignored []string }

func (d *decoder) object(data []byte, v reflect.Value, path string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se) && path == "":
			return badRequest("invalid JSON: %v (at byte %d)", se, se.Offset)
		case path == "":
			return badRequest("request body must be a JSON object")
		default:
			return badField(path, "must be an object")
		}
	}
	if m == nil {
		if path == "" {
			return badRequest("request body must be a JSON object")
		}
		return badField(path, "must be an object")
	}
	fi := fieldsOf(v.Type())
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		fp := joinPath(path, name)
		idx, ok := fi.byName[name]
		if !ok {
			if ignoredFields[name] {
				d.ignored = append(d.ignored, fp)
				delete(m, name)
				continue
			}
			return badField(fp, "unknown field")
		}
		if err := d.value(m[name], v.FieldByIndex(idx), fp); err != nil {
			return err
		}
	}
	if fi.set != nil {
		v.FieldByIndex(fi.set).Set(reflect.ValueOf(fieldSet(m)))
	}
	return nil
}

func (d *decoder) value(raw json.RawMessage, fv reflect.Value, path string) error {
	if isNull(raw) {
		fv.SetZero()
		return nil
	}
	t := fv.Type()
	switch {
	case plainStruct(t):
		return d.object(raw, fv, path)
	case t.Kind() == reflect.Pointer && plainStruct(t.Elem()):
		nv := reflect.New(t.Elem())
		if err := d.object(raw, nv.Elem(), path); err != nil {
			return err
		}
		fv.Set(nv)
		return nil
	case t.Kind() == reflect.Slice && plainStruct(t.Elem()):
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return badField(path, "must be an array of objects")
		}
		s := reflect.MakeSlice(t, len(items), len(items))
		for i := range items {
			if err := d.value(items[i], s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		fv.Set(s)
		return nil
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		// Member by member, so an error names the member ("tags.env").
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil {
			return badField(path, "must be %s", describe(t))
		}
		names := make([]string, 0, len(members))
		for n := range members {
			names = append(names, n)
		}
		slices.Sort(names)
		m := reflect.MakeMapWithSize(t, len(members))
		for _, n := range names {
			ev := reflect.New(t.Elem()).Elem()
			if err := d.value(members[n], ev, path+"."+truncate(n, 40)); err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(n).Convert(t.Key()), ev)
		}
		fv.Set(m)
		return nil
	}
	if err := json.Unmarshal(raw, fv.Addr().Interface()); err != nil {
		return fieldError(path, t, err)
	}
	return nil
}

// fieldError names the field a value could not be decoded into and what
// it should have been.
func fieldError(path string, t reflect.Type, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return badField(path, "must be %s", describe(t))
	}
	for _, ce := range []error{credits.ErrNegative, credits.ErrFractional, credits.ErrTooLarge, credits.ErrNotNumber} {
		if errors.Is(err, ce) {
			if ce == credits.ErrNotNumber {
				return badField(path, "must be a whole number")
			}
			return badField(path, "%v", ce)
		}
	}
	return badField(path, "%v", err)
}

var (
	amountType = reflect.TypeFor[credits.Amount]()
	countType  = reflect.TypeFor[count]()
	timeType   = reflect.TypeFor[time.Time]()
	setType    = reflect.TypeFor[fieldSet]()
	unmarshalT = reflect.TypeFor[json.Unmarshaler]()
)

// describe names the JSON a Go type expects, for error messages.
func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == amountType || t == countType:
		return "a whole number"
	case t == timeType:
		return "an RFC 3339 timestamp"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if e := t.Elem(); e.Kind() == reflect.String {
			return "an array of strings"
		}
		return "an array"
	case reflect.Map:
		if e := t.Elem(); e.Kind() == reflect.String || e.Kind() == reflect.Pointer && e.Elem().Kind() == reflect.String {
			return "an object of strings"
		}
		return "an object"
	}
	return "an object"
}

// plainStruct reports whether t is a struct the decoder walks itself
// (rather than one that decodes itself).
func plainStruct(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != timeType && !reflect.PointerTo(t).Implements(unmarshalT)
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// structFields maps JSON member names to struct field indexes.
type structFields struct {
	byName map[string][]int
	set    []int // index of the fieldSet field, if any
}

var fieldCache sync.Map // reflect.Type -> *structFields

func fieldsOf(t reflect.Type) *structFields {
	if c, ok := fieldCache.Load(t); ok {
		return c.(*structFields)
	}
	sf := &structFields{byName: map[string][]int{}}
	depth := map[string]int{}
	for _, f := range reflect.VisibleFields(t) {
		if f.Type == setType {
			if sf.set == nil || len(f.Index) < len(sf.set) {
				sf.set = f.Index
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
			continue // its fields are promoted
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if d, ok := depth[name]; ok && d <= len(f.Index) {
			continue // the shallower field wins, as in encoding/json
		}
		depth[name] = len(f.Index)
		sf.byName[name] = f.Index
	}
	fieldCache.Store(t, sf)
	return sf
}
