package gate

import "context"

// credential refuses a call that presents no API key.
type credential struct{}

func (credential) Name() string { return "credential" }

func (credential) Check(_ context.Context, c *Call) error {
	if c.Credential == "" && c.Key == nil {
		return &Denial{Reason: MissingAPIKey}
	}
	return nil
}
