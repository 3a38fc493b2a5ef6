package config

import (
	"reflect"
	"strings"
)

// Reloadable compares two configurations key by key (top-level JSON keys,
// in struct order). changed lists the keys that differ and can be applied
// to a running gateway (the fields tagged reload:"hot": prices,
// toolPricing, globalRateLimitPerMin, globalQuota, shadowMode,
// refundOnFailure, freeMethods, webhook*, alertRules, cors,
// customHeaders); skipped lists the keys that differ but only take effect
// after a restart (serverCommand, remoteUrl, servers, port, host,
// stateFile, redisUrl, oauth, ...). Keys without a config file entry
// (dryRun aside) are compared under the key they belong to: the argv
// given after "wrap --" counts as serverCommand.
func Reloadable(old, new *Config) (changed, skipped []string) {
	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(new).Elem()
	t := ov.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || key == "-" || key == "dryRun" {
			continue
		}
		differ := !same(ov.Field(i), nv.Field(i))
		if key == "serverCommand" && !reflect.DeepEqual(old.ServerArgv, new.ServerArgv) {
			differ = true
		}
		if !differ {
			continue
		}
		if f.Tag.Get("reload") == "hot" {
			changed = append(changed, key)
		} else {
			skipped = append(skipped, key)
		}
	}
	return changed, skipped
}

// same is reflect.DeepEqual, except that a nil and an empty map or list
// are the same setting ("toolPricing": {} and no toolPricing at all).
func same(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Map, reflect.Slice:
		if a.Len() == 0 && b.Len() == 0 {
			return true
		}
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}
