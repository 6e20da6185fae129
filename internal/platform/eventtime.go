package platform

import (
	"time"

	"github.com/lovoo/goka"
)

// MaxClockSkew is how far ahead of the processing clock a record's timestamp is trusted. A
// record's timestamp is its producer's clock (topics use CreateTime); one producer with a
// clock a day ahead would otherwise move a key's stream time a day ahead, and every later
// record of that key would look a day late (expired sessions, dropped answers). A record
// stamped further ahead is taken as produced MaxClockSkew from now; records stamped in the past
// (a backlog, a replay) keep their time.
const MaxClockSkew = time.Minute

// EventTime is the event time of the record being processed: its timestamp, bounded by
// BoundEventTime at the processing clock.
func EventTime(ctx goka.Context) time.Time { return BoundEventTime(ctx.Timestamp(), time.Now()) }

// BoundEventTime returns ts, or now+MaxClockSkew when ts is later than that.
func BoundEventTime(ts, now time.Time) time.Time {
	if limit := now.Add(MaxClockSkew); ts.After(limit) {
		return limit
	}
	return ts
}
