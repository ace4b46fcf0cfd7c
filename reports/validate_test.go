package reports_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// validate checks doc against the subset of JSON Schema 2020-12 the
// published schemas use: type, properties, required, additionalProperties,
// items, enum, const, minimum, minLength, pattern, format date-time, $ref to #/$defs
// and anyOf. It returns one message per violation, naming the JSON path.
func validate(root, schema map[string]any, doc any, at string) []string {
	if ref, ok := schema["$ref"].(string); ok {
		name, found := strings.CutPrefix(ref, "#/$defs/")
		def, _ := root["$defs"].(map[string]any)[name].(map[string]any)
		if !found || def == nil {
			return []string{fmt.Sprintf("%s: unresolvable $ref %q", at, ref)}
		}
		return validate(root, def, doc, at)
	}
	var errs []string
	if anyOf, ok := schema["anyOf"].([]any); ok {
		matched := false
		for _, s := range anyOf {
			if len(validate(root, s.(map[string]any), doc, at)) == 0 {
				matched = true
				break
			}
		}
		if !matched {
			errs = append(errs, fmt.Sprintf("%s: matches no anyOf alternative", at))
		}
	}
	if t, ok := schema["type"]; ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				types = append(types, x.(string))
			}
		}
		if !slices.ContainsFunc(types, func(t string) bool { return hasType(doc, t) }) {
			return append(errs, fmt.Sprintf("%s: %T is not of type %v", at, doc, types))
		}
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, doc) {
		errs = append(errs, fmt.Sprintf("%s: %v not in enum %v", at, doc, enum))
	}
	if c, ok := schema["const"]; ok && c != doc {
		errs = append(errs, fmt.Sprintf("%s: %v is not %v", at, doc, c))
	}
	if min, ok := schema["minimum"].(float64); ok {
		if n, ok := doc.(float64); ok && n < min {
			errs = append(errs, fmt.Sprintf("%s: %v < minimum %v", at, n, min))
		}
	}
	if s, ok := doc.(string); ok {
		if min, ok := schema["minLength"].(float64); ok && float64(utf8.RuneCountInString(s)) < min {
			errs = append(errs, fmt.Sprintf("%s: %q is shorter than minLength %v", at, s, min))
		}
		if p, ok := schema["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(s) {
			errs = append(errs, fmt.Sprintf("%s: %q does not match %s", at, s, p))
		}
		if schema["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %q is not a date-time", at, s))
			}
		}
	}
	if obj, ok := doc.(map[string]any); ok {
		props, _ := schema["properties"].(map[string]any)
		if req, ok := schema["required"].([]any); ok {
			for _, k := range req {
				if _, ok := obj[k.(string)]; !ok {
					errs = append(errs, fmt.Sprintf("%s: missing required %q", at, k))
				}
			}
		}
		for k, v := range obj {
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, validate(root, ps, v, at+"."+k)...)
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case bool:
				if !ap {
					errs = append(errs, fmt.Sprintf("%s: unexpected property %q", at, k))
				}
			case map[string]any:
				errs = append(errs, validate(root, ap, v, at+"."+k)...)
			}
		}
	}
	if arr, ok := doc.([]any); ok {
		if items, ok := schema["items"].(map[string]any); ok {
			for i, v := range arr {
				errs = append(errs, validate(root, items, v, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return errs
}

func hasType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "integer":
		n, ok := v.(float64)
		return ok && n == float64(int64(n))
	case "number":
		_, ok := v.(float64)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	}
	return false
}
