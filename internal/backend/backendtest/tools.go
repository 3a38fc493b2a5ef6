package backendtest

import (
	"encoding/json"
	"fmt"
	"slices"
)

// The suite runs against real servers, which differ in their tools. Each
// feature lists the tools known to exercise it, on the Go SDK's
// conformance everything-server and on the reference npm servers
// (everything, memory, filesystem); the first one the server offers is used.
type tool struct {
	name string
	args func(arg string) string // arguments for tools/call
}

func fixed(args string) func(string) string { return func(string) string { return args } }

var (
	// A quick call with a fixed answer.
	simpleTools = []tool{
		{"test_simple_text", fixed(`{}`)},
		{"echo", fixed(`{"message":"hello"}`)},
		{"read_graph", fixed(`{}`)},
		{"list_allowed_directories", fixed(`{}`)},
	}
	// A call whose result contains its argument, to prove a response
	// belongs to its request.
	echoTools = []tool{
		{"json_schema_2020_12_tool", func(s string) string { return fmt.Sprintf(`{"name":%q,"email":"a@example.com"}`, s) }},
		{"echo", func(s string) string { return fmt.Sprintf(`{"message":%q}`, s) }},
	}
	// A call that reports progress before it answers.
	progressTools = []tool{
		{"test_tool_with_progress", fixed(`{}`)},
		{"trigger-long-running-operation", fixed(`{"duration":0.2,"steps":2}`)},
	}
	// A call that waits for sampling/createMessage to be answered.
	samplingTools = []tool{
		{"test_sampling", func(s string) string { return fmt.Sprintf(`{"prompt":%q}`, s) }},
		{"trigger-sampling-request", func(s string) string { return fmt.Sprintf(`{"prompt":%q,"maxTokens":16}`, s) }},
	}
	// A call that waits for elicitation/create to be answered.
	elicitationTools = []tool{
		{"test_elicitation", func(s string) string { return fmt.Sprintf(`{"message":%q}`, s) }},
		{"trigger-elicitation-request", fixed(`{}`)},
	}
)

// catalogue is the set of tool names a server offers.
type catalogue []string

func (c catalogue) pick(tools []tool) (tool, bool) {
	for _, t := range tools {
		if slices.Contains(c, t.name) {
			return t, true
		}
	}
	return tool{}, false
}

func parseCatalogue(result json.RawMessage) (catalogue, error) {
	var r struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(result, &r); err != nil {
		return nil, err
	}
	var c catalogue
	for _, t := range r.Tools {
		c = append(c, t.Name)
	}
	return c, nil
}

// callParams builds tools/call params, with a progress token when tok is
// not empty.
func callParams(t tool, arg, tok string) json.RawMessage {
	p := fmt.Sprintf(`{"name":%q,"arguments":%s`, t.name, t.args(arg))
	if tok != "" {
		p += `,"_meta":{"progressToken":` + tok + `}`
	}
	return json.RawMessage(p + `}`)
}

// toolText joins the text content of a tools/call result.
func toolText(result json.RawMessage) string {
	var r struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	_ = json.Unmarshal(result, &r)
	s := ""
	for _, c := range r.Content {
		s += c.Text
	}
	return s
}
