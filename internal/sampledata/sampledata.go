// Package sampledata writes and reads the ecosystem's sample data, as the reference's data tools
// did: warehouse stock, sample customers, a stream of orders with their payments read back
// through the REST API, and a decoded view of any topic. The ordersctl tool is a thin shell
// over it, and the one-command ecosystem and the end-to-end tests call it to seed data, so
// every function takes its Kafka client and names instead of building its own configuration.
package sampledata

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
)

// DefaultStock is the stock the reference's inventory tool adds when given no product:
// UNDERPANTS=20, JUMPERS=10.
func DefaultStock() map[domain.Product]int32 {
	return map[domain.Product]int32{domain.Underpants: 20, domain.Jumpers: 10}
}

// SetStock writes one `warehouse-inventory` record per product in stock: key the product name,
// value the count as a 4-byte big-endian int. The topic is a table, so each record replaces the
// product's previous count; products not in stock keep theirs. It returns once every record is
// acknowledged by all in-sync replicas.
func SetStock(ctx context.Context, client *kgo.Client, names platform.Names, stock map[domain.Product]int32) error {
	for p, n := range stock {
		if !p.Valid() {
			return fmt.Errorf("set stock: unknown product %q (want one of %v)", p, domain.Products)
		}
		if n < 0 {
			return fmt.Errorf("set stock: %s: negative count %d", p, n)
		}
	}
	topic := names.Topic(string(platform.TopicWarehouseInventory))
	var recs []*kgo.Record
	// Walk the enum rather than the map so that records are written in a stable order.
	for _, p := range domain.Products {
		n, ok := stock[p]
		if !ok {
			continue
		}
		value, err := platform.StockCodec{}.Encode(n)
		if err != nil {
			return fmt.Errorf("set stock: %w", err)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(p), Value: value})
	}
	if err := produce(ctx, client, recs); err != nil {
		return fmt.Errorf("set stock: %w", err)
	}
	return nil
}

// SampleCustomers returns the sample customers: ids 0–5, the customers the reference's order
// tool picks from, with every level represented, and customer 15 of SPEC.md's email worked case.
func SampleCustomers() []domain.Customer {
	return []domain.Customer{
		{ID: 0, FirstName: "Ada", LastName: "Lovelace", Email: "ada@analytical.engine", Address: "12 st james's square, london, gbr", Level: "platinum"},
		{ID: 1, FirstName: "Alan", LastName: "Turing", Email: "alan@bletchley.park", Address: "bletchley park, milton keynes, gbr", Level: "gold"},
		{ID: 2, FirstName: "Grace", LastName: "Hopper", Email: "grace@cobol.dev", Address: "1 navy yard, arlington, usa", Level: "silver"},
		{ID: 3, FirstName: "Edsger", LastName: "Dijkstra", Email: "edsger@goto.harmful", Address: "plantage muidergracht, amsterdam, nld", Level: "bronze"},
		{ID: 4, FirstName: "Barbara", LastName: "Liskov", Email: "barbara@substitution.org", Address: "77 massachusetts ave, cambridge, usa", Level: "gold"},
		{ID: 5, FirstName: "Leslie", LastName: "Lamport", Email: "leslie@paxos.island", Address: "paxos, ionian islands, grc", Level: domain.DefaultCustomerLevel},
		{ID: 15, FirstName: "Franz", LastName: "Kafka", Email: "frans@thedarkside.net", Address: "oppression street, prague, cze", Level: "gold"},
	}
}

// ProduceCustomers writes customers to the `customers` table with the built-in schema ids
// (registry-less mode), keyed by id as an 8-byte big-endian long.
func ProduceCustomers(ctx context.Context, client *kgo.Client, names platform.Names, customers []domain.Customer) error {
	return ProduceCustomersWith(ctx, client, names, platform.StaticCodecs(), customers)
}

// ProduceCustomersWith is ProduceCustomers with the given codecs, e.g. those of a schema
// registry from platform.CodecsFor.
func ProduceCustomersWith(ctx context.Context, client *kgo.Client, names platform.Names, codecs *platform.Codecs, customers []domain.Customer) error {
	topic := names.Topic(string(platform.TopicCustomers))
	recs := make([]*kgo.Record, 0, len(customers))
	for _, c := range customers {
		value, err := codecs.Customer.Marshal(c)
		if err != nil {
			return fmt.Errorf("produce customers: customer %d: %w", c.ID, err)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(platform.CustomerKey(c.ID)), Value: value})
	}
	if err := produce(ctx, client, recs); err != nil {
		return fmt.Errorf("produce customers: %w", err)
	}
	return nil
}

// produce writes recs and waits for every acknowledgement.
func produce(ctx context.Context, client *kgo.Client, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	for _, r := range client.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			return fmt.Errorf("write to %s key %q: %w", r.Record.Topic, r.Record.Key, r.Err)
		}
	}
	return nil
}

// TopicIsEmpty reports whether topic holds no records yet. Seeding uses it to write sample
// data only once: stock written again after orders reserved against it would reset it.
func TopicIsEmpty(ctx context.Context, client *kgo.Client, topic string) (bool, error) {
	ends, err := kadm.NewClient(client).ListEndOffsets(ctx, topic)
	if err != nil {
		return false, fmt.Errorf("read end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return false, fmt.Errorf("read end offsets of %s: %w", topic, err)
	}
	empty := true
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			empty = false
		}
	})
	return empty, nil
}
