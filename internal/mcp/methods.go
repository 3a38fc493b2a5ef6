package mcp

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Method names paygate treats specially.
const (
	MethodInitialize            = "initialize"
	MethodPing                  = "ping"
	MethodToolsList             = "tools/list"
	MethodToolsCall             = "tools/call"
	MethodToolsCallBatch        = "tools/call_batch" // paygate-mcp extension
	MethodResourcesList         = "resources/list"
	MethodResourcesTemplates    = "resources/templates/list"
	MethodResourcesRead         = "resources/read"
	MethodResourcesSubscribe    = "resources/subscribe"
	MethodResourcesUnsubscribe  = "resources/unsubscribe"
	MethodPromptsList           = "prompts/list"
	MethodPromptsGet            = "prompts/get"
	MethodLoggingSetLevel       = "logging/setLevel"
	MethodCompletionComplete    = "completion/complete"
	MethodSamplingCreateMessage = "sampling/createMessage"
	MethodElicitationCreate     = "elicitation/create"
	MethodRootsList             = "roots/list"
	MethodServerDiscover        = "server/discover" // 2026-07-28 stateless discovery

	NotificationInitialized          = "notifications/initialized"
	NotificationCancelled            = "notifications/cancelled"
	NotificationProgress             = "notifications/progress"
	NotificationMessage              = "notifications/message"
	NotificationToolsListChanged     = "notifications/tools/list_changed"
	NotificationPromptsListChanged   = "notifications/prompts/list_changed"
	NotificationResourcesListChanged = "notifications/resources/list_changed"
	NotificationResourceUpdated      = "notifications/resources/updated"
	NotificationRootsListChanged     = "notifications/roots/list_changed"
)

// Protocol revisions paygate speaks on its front door, newest first.
const (
	Version20251125 = "2025-11-25"
	Version20250618 = "2025-06-18"
	Version20250326 = "2025-03-26"
	Version20241105 = "2024-11-05"

	LatestVersion = Version20251125
	// DefaultHTTPVersion is what a Streamable HTTP server assumes when a
	// request carries no MCP-Protocol-Version header (spec 2025-06-18).
	DefaultHTTPVersion = Version20250326
)

// SupportedVersions lists the revisions paygate negotiates, newest first.
var SupportedVersions = []string{Version20251125, Version20250618, Version20250326, Version20241105}

// IsSupportedVersion reports whether v is a revision paygate speaks.
func IsSupportedVersion(v string) bool {
	for _, s := range SupportedVersions {
		if s == v {
			return true
		}
	}
	return false
}

// NegotiateVersion picks the revision to answer a client that asked for v:
// v itself when supported, otherwise the latest.
func NegotiateVersion(v string) string {
	if IsSupportedVersion(v) {
		return v
	}
	return LatestVersion
}

// BatchesAllowed reports whether JSON-RPC batches are part of revision v.
// They were added in 2025-03-26 and removed in 2025-06-18.
func BatchesAllowed(v string) bool { return v == Version20250326 || v == Version20241105 }

// CallToolParams is the part of tools/call params paygate reads. Arguments
// stay raw so they are forwarded untouched.
type CallToolParams struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
	Meta      json.RawMessage `json:"_meta,omitempty"`
}

// ParseCallTool reads the tool name and raw arguments of tools/call params.
func ParseCallTool(params json.RawMessage) (*CallToolParams, error) {
	if len(params) == 0 {
		return nil, fmt.Errorf("%w: tools/call needs params", ErrInvalidParams)
	}
	var p CallToolParams
	var nameRaw []byte
	err := members(params, func(key, val []byte) error {
		switch string(key) {
		case "name":
			nameRaw = val
		case "arguments":
			p.Arguments = val
		case "_meta":
			p.Meta = val
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: params must be a JSON object", ErrInvalidParams)
	}
	if nameRaw != nil && !isNull(nameRaw) {
		name, ok := unquote(nameRaw)
		if !ok {
			return nil, fmt.Errorf("%w: name must be a string", ErrInvalidParams)
		}
		p.Name = name
	}
	if p.Name == "" {
		return nil, fmt.Errorf("%w: tools/call needs a tool name", ErrInvalidParams)
	}
	if isNull(p.Arguments) {
		p.Arguments = nil
	}
	if len(p.Arguments) > 0 && p.Arguments[0] != '{' {
		return nil, fmt.Errorf("%w: arguments must be an object", ErrInvalidParams)
	}
	if isNull(p.Meta) {
		p.Meta = nil
	}
	return &p, nil
}

// ErrInvalidParams reports params of the wrong shape (-32602).
var ErrInvalidParams = errors.New("invalid params")

// ToolResultIsError reports whether a tools/call result has isError: true.
// It scans the top level only, without decoding the (possibly large) content.
func ToolResultIsError(result json.RawMessage) bool {
	isErr := false
	_ = members(result, func(key, val []byte) error {
		if string(key) == "isError" {
			isErr = string(val) == "true"
		}
		return nil
	})
	return isErr
}
