package gate

import (
	"context"
	"fmt"
	"time"

	"github.com/paygate/paygate/internal/policy"
	"github.com/paygate/paygate/internal/store"
)

// quota refuses a call that would pass the key's daily or monthly call or
// credit quota (its own, else the global one). Periods are UTC days and
// months; counters of an earlier period count as zero. Reaching a quota
// exactly is allowed. RetryAfter is the time until the period ends.
type quota struct{ policy *policy.Snapshot }

func (*quota) Name() string { return "quota" }

func (q *quota) Check(_ context.Context, c *Call) error {
	if c.Key == nil {
		return nil
	}
	lim, _ := q.policy.Quota(c.Key)
	if lim.IsZero() {
		return nil
	}
	a := &c.Account
	var day, month store.Account // zero counters unless the account is in the current period
	if a.Day == store.DayOf(c.Now) {
		day = *a
	}
	if a.Month == store.MonthOf(c.Now) {
		month = *a
	}
	n := c.count()
	switch {
	case over(lim.DailyCalls, day.DailyCalls, n):
		return q.deny(c, "daily call", lim.DailyCalls, day.DailyCalls, n, nextDay(c.Now))
	case over(lim.MonthlyCalls, month.MonthlyCalls, n):
		return q.deny(c, "monthly call", lim.MonthlyCalls, month.MonthlyCalls, n, nextMonth(c.Now))
	case over(lim.DailyCredits, day.DailyCredits, c.Total):
		return q.deny(c, "daily credit", lim.DailyCredits, day.DailyCredits, c.Total, nextDay(c.Now))
	case over(lim.MonthlyCredits, month.MonthlyCredits, c.Total):
		return q.deny(c, "monthly credit", lim.MonthlyCredits, month.MonthlyCredits, c.Total, nextMonth(c.Now))
	}
	return nil
}

func over(limit, used, need int64) bool { return limit > 0 && used+need > limit }

func (*quota) deny(c *Call, what string, limit, used, need int64, reset time.Time) *Denial {
	d := c.deny(QuotaExceeded, fmt.Sprintf("%s limit %d reached (used %d, need %d)", what, limit, used, need))
	d.RetryAfter = reset.Sub(c.Now)
	return d
}

func nextDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
}

func nextMonth(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
}
