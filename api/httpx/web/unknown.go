package web

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

// unknownFieldPointer finds the JSON pointer of the first field in data that
// the type of v does not know. encoding/json reports only the field's name
// ("json: unknown field \"max_attempt\""), which points a client at the
// wrong place when the field is nested (#/max_attempt instead of
// #/retry/max_attempt); walking the document beside the type recovers the
// path. It returns "" when it finds none, so callers fall back to the name.
func unknownFieldPointer(data []byte, v any) string {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return ""
	}
	return walkUnknown(doc, reflect.TypeOf(v), "#")
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func walkUnknown(doc any, t reflect.Type, ptr string) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || reflect.PointerTo(t).Implements(unmarshalerType) {
		return "" // decodes itself (json.RawMessage and friends)
	}
	switch d := doc.(type) {
	case map[string]any:
		return walkObject(d, t, ptr)
	case []any:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return ""
		}
		for i, e := range d {
			if p := walkUnknown(e, t.Elem(), ptr+"/"+strconv.Itoa(i)); p != "" {
				return p
			}
		}
	}
	return ""
}

func walkObject(d map[string]any, t reflect.Type, ptr string) string {
	switch t.Kind() {
	case reflect.Map:
		for k, e := range d {
			if p := walkUnknown(e, t.Elem(), ptr+"/"+pointerToken(k)); p != "" {
				return p
			}
		}
	case reflect.Struct:
		for k, e := range d {
			f, ok := fieldByJSONName(t, k)
			if !ok {
				return ptr + "/" + pointerToken(k)
			}
			if p := walkUnknown(e, f.Type, ptr+"/"+pointerToken(k)); p != "" {
				return p
			}
		}
	}
	return ""
}

// fieldByJSONName finds the field encoding/json would decode name into:
// exact tag or field name first, then a case-insensitive match, looking
// through embedded structs.
func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	var fold reflect.StructField
	found := false
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous && f.Type.Kind() == reflect.Struct {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f, true
		}
		if !found && strings.EqualFold(tag, name) {
			fold, found = f, true
		}
	}
	return fold, found
}

// pointerToken escapes a key as a JSON pointer token (RFC 6901).
func pointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
