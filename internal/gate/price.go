package gate

import (
	"context"
	"fmt"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/policy"
)

// price sets each item's Price from the policy and c.Total to their sum.
// It never denies; a price that overflows credits.Max is a fault.
type price struct{ policy *policy.Snapshot }

func (*price) Name() string { return "price" }

func (p *price) Check(_ context.Context, c *Call) error {
	var total credits.Credits
	for i := range c.Items {
		it := &c.Items[i]
		amount, err := p.policy.Price(it.Tool, it.ArgBytes)
		if err != nil {
			return err
		}
		it.Price = amount
		if total, err = credits.Add(total, amount); err != nil {
			return fmt.Errorf("total of %d items: %w", len(c.Items), err)
		}
	}
	c.Total = total
	return nil
}
