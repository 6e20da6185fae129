package reliability

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/details"
	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/inventory"
	"github.com/ordersys/ecosystem/internal/platform"
)

// audit is what the topics and the email service's output say happened, read from outside
// the services.
type audit struct {
	// created is the first CREATED record of each order id in `orders`; createdN counts them.
	created  map[string]domain.Order
	createdN map[string]int
	// createdAt says where the first CREATED of each id is (partition, offset, timestamp), for
	// the report of an undecided order.
	createdAt map[string]string
	// decisions lists every VALIDATED or FAILED record per order id, in offset order.
	decisions map[string][]domain.OrderState
	// verdicts lists every verdict per order id and check type.
	verdicts map[string]map[domain.CheckType][]domain.ValidationResult
	// reserved is the inventory service's state per product: the latest value of its group
	// table topic.
	reserved map[domain.Product]inventory.ReservedStock
	// emails counts the "email sent" lines per order id over every run of the email service
	// (the default log emailer writes one line per email it sends).
	emails map[string]int
	// enriched counts OrderEnriched records per order id, and records the topics they went to.
	enriched       map[string]int
	enrichedTopics map[string][]string
	// undecodable counts records of the audited topics that did not decode.
	undecodable int
}

// collectAudit reads `orders`, `order-validations`, the inventory table, the level topics and
// the output of every run of the email services.
func (c *cluster) collectAudit(emailServices ...*service) *audit {
	c.t.Helper()
	a := &audit{
		created: map[string]domain.Order{}, createdN: map[string]int{}, createdAt: map[string]string{},
		decisions: map[string][]domain.OrderState{},
		verdicts:  map[string]map[domain.CheckType][]domain.ValidationResult{},
		reserved:  map[domain.Product]inventory.ReservedStock{},
		emails:    map[string]int{}, enriched: map[string]int{}, enrichedTopics: map[string][]string{},
	}
	for _, r := range c.readTopic(c.names.Topic(string(platform.TopicOrders))) {
		o, err := c.codecs.Order.Unmarshal(r.Value)
		if err != nil {
			a.undecodable++
			continue
		}
		switch o.State {
		case domain.OrderCreated:
			if a.createdN[o.ID] == 0 {
				a.created[o.ID] = o
				a.createdAt[o.ID] = fmt.Sprintf("partition %d offset %d at %s", r.Partition, r.Offset,
					r.Timestamp.UTC().Format(time.RFC3339Nano))
			}
			a.createdN[o.ID]++
		case domain.OrderValidated, domain.OrderFailed:
			a.decisions[o.ID] = append(a.decisions[o.ID], o.State)
		}
	}
	for _, r := range c.readTopic(c.names.Topic(string(platform.TopicOrderValidations))) {
		v, err := c.codecs.OrderValidation.Unmarshal(r.Value)
		if err != nil {
			a.undecodable++
			continue
		}
		if a.verdicts[v.OrderID] == nil {
			a.verdicts[v.OrderID] = map[domain.CheckType][]domain.ValidationResult{}
		}
		a.verdicts[v.OrderID][v.CheckType] = append(a.verdicts[v.OrderID][v.CheckType], v.ValidationResult)
	}
	products := make([]string, len(domain.Products))
	for i, p := range domain.Products {
		products[i] = string(p)
	}
	for key, r := range c.readLatest(string(goka.GroupTable(c.names.Group(platform.GroupInventory))), products) {
		if r.Value == nil {
			continue
		}
		rs, err := platform.StateCodec[inventory.ReservedStock]{}.Unmarshal(r.Value)
		if err != nil {
			a.undecodable++
			continue
		}
		a.reserved[domain.Product(key)] = rs
	}
	for level := range platform.LevelTopics {
		topic, _ := c.names.LevelTopic(level)
		for _, r := range c.readTopic(string(topic)) {
			e, err := c.codecs.OrderEnriched.Unmarshal(r.Value)
			if err != nil {
				a.undecodable++
				continue
			}
			a.enriched[e.ID]++
			a.enrichedTopics[e.ID] = append(a.enrichedTopics[e.ID], level)
		}
	}
	for _, s := range emailServices {
		for id, n := range emailsSent(s.output()) {
			a.emails[id] += n
		}
	}
	return a
}

// emailsSent counts the log emailer's "email sent" lines per order id in a service's output.
func emailsSent(output string) map[string]int {
	counts := map[string]int{}
	for _, line := range strings.Split(output, "\n") {
		if !strings.Contains(line, `"msg":"email sent"`) {
			continue
		}
		var entry struct {
			OrderID string `json:"order_id"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.OrderID != "" {
			counts[entry.OrderID]++
		}
	}
	return counts
}

// decision returns the single final state of id, or "" when it has none. Several identical
// decision records count as that one state (see report.RepeatedDecisions).
func (a *audit) decision(id string) domain.OrderState {
	ds := a.decisions[id]
	if len(ds) == 0 {
		return ""
	}
	return ds[0]
}

// firstVerdicts returns the first verdict of each check type of id.
func (a *audit) firstVerdicts(id string) map[domain.CheckType]domain.ValidationResult {
	out := map[domain.CheckType]domain.ValidationResult{}
	for check, results := range a.verdicts[id] {
		out[check] = results[0]
	}
	return out
}

// expectedReserved is, per product, the units held by orders whose inventory check passed and
// which did not end FAILED (a FAILED order's reservation is released).
func (a *audit) expectedReserved() map[domain.Product]int64 {
	out := map[domain.Product]int64{}
	for id, o := range a.created {
		if a.firstVerdicts(id)[domain.InventoryCheck] == domain.Pass && a.decision(id) != domain.OrderFailed {
			out[o.Product] += int64(o.Quantity)
		}
	}
	return out
}

// report holds the measured counts of a scenario; it is logged as one JSON line so the
// numbers in docs/reliability.md can be taken from real runs.
type report struct {
	Scenario string `json:"scenario"`
	// The load: orders attempted, accepted with 201, and the statuses of the others.
	Attempted int            `json:"attempted"`
	Accepted  int            `json:"accepted"`
	Statuses  map[string]int `json:"statuses"`
	// What `orders` holds: order ids, their final states, and anomalies.
	OrderIDs  int `json:"orderIds"`
	Validated int `json:"validated"`
	Failed    int `json:"failed"`
	// AcceptedLost are accepted orders missing from `orders`; Undecided have no final state;
	// ConflictingDecisions have both VALIDATED and FAILED; WrongDecisions contradict the
	// verdicts. All must be zero.
	AcceptedLost         int `json:"acceptedLost"`
	Undecided            int `json:"undecided"`
	ConflictingDecisions int `json:"conflictingDecisions"`
	WrongDecisions       int `json:"wrongDecisions"`
	// RepeatedDecisions counts extra identical decision records: the aggregator emits its
	// decision again when the message that caused it is redelivered after a crash. Accepted:
	// the record is identical, so every reader sees the same single state.
	RepeatedDecisions int `json:"repeatedDecisions"`
	// DuplicateCreated counts order ids written more than once as CREATED.
	DuplicateCreated int `json:"duplicateCreated"`
	// ConflictingVerdicts counts (order, check) pairs with different results (must be zero);
	// RepeatedVerdicts extra identical verdicts (redelivery, accepted like decisions).
	ConflictingVerdicts int `json:"conflictingVerdicts"`
	RepeatedVerdicts    int `json:"repeatedVerdicts"`
	// Reservations: the inventory table against the verdicts and decisions, per product.
	Reserved         map[string]int64 `json:"reserved"`
	ExpectedReserved map[string]int64 `json:"expectedReserved"`
	// Emails: eligible orders (accepted, paid, customer known), emails sent, and anomalies.
	EmailEligible    int `json:"emailEligible"`
	Emails           int `json:"emails"`
	MissingEmails    int `json:"missingEmails"`
	DuplicateEmails  int `json:"duplicateEmails"`
	UnexpectedEmails int `json:"unexpectedEmails"`
	// Enriched records: orders of known customers enriched, and repeats (a replayed record
	// re-emits its enriched record in case the first copy was lost).
	Enriched        int `json:"enriched"`
	MissingEnriched int `json:"missingEnriched"`
	RepeatedEnrich  int `json:"repeatedEnriched"`
	Undecodable     int `json:"undecodable"`
	// SettledAfter is how long after the load stopped everything was decided and emailed.
	SettledAfter string `json:"settledAfter"`
}

// checkPromises checks the audit against the placements and returns the report and every
// violated promise, as readable lines.
func checkPromises(placements []*placement, a *audit, stock map[domain.Product]int32, known []int64) (report, []string) {
	rep := report{Statuses: map[string]int{}, Reserved: map[string]int64{}, ExpectedReserved: map[string]int64{}}
	var problems []string
	problem := func(format string, args ...any) {
		if len(problems) < 40 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	isKnown := map[int64]bool{}
	for _, id := range known {
		isKnown[id] = true
	}
	eligible := map[string]bool{}
	accepted := map[string]bool{}
	posted := map[string]string{} // how each order's POST went, for the report of an undecided one
	rep.Attempted = len(placements)
	for _, p := range placements {
		posted[p.order.ID] = fmt.Sprintf("POST %s at %s took %v %s", statusKey(p.status),
			p.at.UTC().Format(time.RFC3339Nano), p.took.Round(time.Millisecond), p.err)
		key := fmt.Sprint(p.status)
		if p.status == 0 {
			key = "no answer"
		}
		rep.Statuses[key]++
		if !p.accepted() {
			continue
		}
		rep.Accepted++
		accepted[p.order.ID] = true
		got, ok := a.created[p.order.ID]
		switch {
		case !ok:
			rep.AcceptedLost++
			problem("order %s was accepted (201) but is not in the orders topic", p.order.ID)
		case got != p.order:
			problem("order %s is stored as %+v, posted as %+v", p.order.ID, got, p.order)
		}
		if p.paid && isKnown[p.order.CustomerID] {
			eligible[p.order.ID] = true
		}
	}

	rep.OrderIDs = len(a.created)
	for id, o := range a.created {
		if a.createdN[id] > 1 {
			rep.DuplicateCreated++
		}
		ds := a.decisions[id]
		distinct := slices.Compact(slices.Sorted(slices.Values(ds)))
		switch {
		case len(ds) == 0:
			rep.Undecided++
			problem("order %s (accepted %v; %s; %s) has no final state; its verdicts: %v", id, accepted[id],
				posted[id], a.createdAt[id], a.verdicts[id])
			continue
		case len(distinct) > 1:
			rep.ConflictingDecisions++
			problem("order %s has conflicting final states %v", id, ds)
		}
		rep.RepeatedDecisions += len(ds) - 1
		if ds[0] == domain.OrderValidated {
			rep.Validated++
		} else {
			rep.Failed++
		}

		verdicts := a.verdicts[id]
		for check, results := range verdicts {
			if len(slices.Compact(slices.Clone(results))) > 1 {
				rep.ConflictingVerdicts++
				problem("order %s: %s verdicts %v disagree", id, check, results)
			}
			rep.RepeatedVerdicts += len(results) - 1
		}
		first := a.firstVerdicts(id)
		if len(first) != len(domain.CheckTypes) {
			problem("order %s has verdicts %v, want one per check", id, first)
		}
		want := domain.OrderValidated
		for _, check := range domain.CheckTypes {
			if first[check] != domain.Pass {
				want = domain.OrderFailed
			}
		}
		if ds[0] != want {
			rep.WrongDecisions++
			problem("order %s decided %s, but its verdicts %v call for %s", id, ds[0], first, want)
		}
		if d := first[domain.OrderDetailsCheck]; d != "" && d != details.Check(o) {
			problem("order %s: details verdict %s, the rule says %s", id, d, details.Check(o))
		}
	}

	expected := a.expectedReserved()
	for _, p := range domain.Products {
		got := a.reserved[p].Reserved
		rep.Reserved[string(p)] = got
		rep.ExpectedReserved[string(p)] = expected[p]
		if got != expected[p] {
			problem("product %s: inventory state reserves %d, the verdicts and decisions say %d", p, got, expected[p])
		}
		if got > int64(stock[p]) {
			problem("product %s: %d reserved of a stock of %d", p, got, stock[p])
		}
	}

	rep.EmailEligible = len(eligible)
	for id := range eligible {
		switch n := a.emails[id]; {
		case n == 0:
			rep.MissingEmails++
			problem("order %s is paid with a known customer but got no email", id)
		case n > 1:
			rep.DuplicateEmails++
			problem("order %s got %d emails", id, n)
		}
	}
	for id, n := range a.emails {
		rep.Emails += n
		if !eligible[id] {
			rep.UnexpectedEmails++
			problem("order %s got %d emails but is not eligible (unpaid, unknown customer or never accepted)", id, n)
		}
	}
	for id, o := range a.created {
		n := a.enriched[id]
		switch {
		case isKnown[o.CustomerID] && n == 0:
			rep.MissingEnriched++
			problem("order %s of known customer %d was never enriched", id, o.CustomerID)
		case !isKnown[o.CustomerID] && n > 0:
			problem("order %s of unknown customer %d was enriched", id, o.CustomerID)
		}
		if n > 0 {
			rep.Enriched++
			rep.RepeatedEnrich += n - 1
		}
		if topics := slices.Compact(slices.Sorted(slices.Values(a.enrichedTopics[id]))); len(topics) > 1 {
			problem("order %s enriched onto several level topics %v", id, topics)
		}
	}
	rep.Undecodable = a.undecodable
	if a.undecodable > 0 {
		problem("%d records of the audited topics do not decode", a.undecodable)
	}
	sort.Strings(problems)
	return rep, problems
}

// settle waits until the ecosystem has worked through the load (every order decided, every
// eligible order emailed, the inventory state matching the decisions) or timeout passes,
// then checks every promise and logs the report. Waiting is not retrying: a promise still
// broken when the system has gone quiet fails the test.
func (c *cluster) settle(name string, placements []*placement, stock map[domain.Product]int32, known []int64,
	timeout time.Duration, emailServices ...*service) report {
	c.t.Helper()
	start := time.Now()
	var rep report
	var problems []string
	for {
		a := c.collectAudit(emailServices...)
		rep, problems = checkPromises(placements, a, stock, known)
		if len(problems) == 0 || time.Since(start) > timeout {
			break
		}
		time.Sleep(time.Second)
	}
	rep.SettledAfter = time.Since(start).Round(time.Second).String()
	if len(problems) == 0 {
		// Anything sent twice would show up within moments; look once more.
		time.Sleep(2 * time.Second)
		rep, problems = checkPromises(placements, c.collectAudit(emailServices...), stock, known)
		rep.SettledAfter = time.Since(start).Round(time.Second).String()
	}
	rep.Scenario = name
	logReport(c.t, rep)
	for _, p := range problems {
		c.t.Error(p)
	}
	for product, want := range rep.ExpectedReserved {
		if rep.Reserved[product] != want {
			c.logInventoryHistory(domain.Product(product))
		}
	}
	return rep
}

// logInventoryHistory logs, for a product whose reservations disagree with the verdicts, the
// last values its key had on the inventory table topic, and any value written after one that
// had applied a later loopback record (a write that reached the topic out of order).
func (c *cluster) logInventoryHistory(product domain.Product) {
	c.t.Helper()
	table := c.names.Topic(string(goka.GroupTable(platform.GroupInventory)))
	var lines []string
	var lastNext int64
	c.scanTopic(table, func(r *kgo.Record) {
		if string(r.Key) != string(product) {
			return
		}
		v, err := platform.StateCodec[inventory.TableValue]{}.Unmarshal(r.Value)
		if r.Value == nil || err != nil {
			lines = append(lines, fmt.Sprintf("offset %d: not a value (%d bytes)", r.Offset, len(r.Value)))
			return
		}
		note := ""
		if v.LoopNext < lastNext {
			note = fmt.Sprintf(" REGRESSED from loopNext %d", lastNext)
		}
		lastNext = max(lastNext, v.LoopNext)
		lines = append(lines, fmt.Sprintf("offset %d at %s: reserved %d, %d in flight, loopNext %d, applied %v%s",
			r.Offset, r.Timestamp.Format("15:04:05.000"), v.Reserved, len(v.Orders), v.LoopNext, v.Applied, note))
	})
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	c.t.Logf("inventory table history of %s (last %d values):\n%s", product, len(lines), strings.Join(lines, "\n"))
}

func logReport(t *testing.T, rep any) {
	t.Helper()
	b, _ := json.Marshal(rep)
	t.Logf("RESULT %s", b)
}
