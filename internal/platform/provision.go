package platform

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ProvisionResult says what provisioning did.
type ProvisionResult struct {
	Created  []string
	Existing []string
}

// Provision creates every topic of the ecosystem that does not exist yet: all with the same
// partition count (the services join and copartition topics, so the counts must agree), the
// given replication, cleanup.policy=compact for tables, and with three or more replicas
// min.insync.replicas=2, so that an acknowledged write (acks=all) survives the loss of a
// broker whatever the cluster's default. It is idempotent. An existing topic with another
// partition count is an error: copartitioning would silently break.
func Provision(ctx context.Context, adm *kadm.Client, names Names, partitions, replication int) (ProvisionResult, error) {
	var res ProvisionResult
	specs := names.AllTopics()
	for _, spec := range specs {
		configs := TopicConfigs(spec, replication)
		resp, err := adm.CreateTopic(ctx, int32(partitions), int16(replication), configs, spec.Name)
		switch {
		case err == nil && resp.Err == nil:
			res.Created = append(res.Created, spec.Name)
		case errors.Is(err, kerr.TopicAlreadyExists) || errors.Is(resp.Err, kerr.TopicAlreadyExists):
			res.Existing = append(res.Existing, spec.Name)
		case err != nil:
			return res, fmt.Errorf("provision: create %s: %w", spec.Name, err)
		default:
			return res, fmt.Errorf("provision: create %s: %w (%s)", spec.Name, resp.Err, resp.ErrMessage)
		}
	}
	if len(res.Existing) > 0 {
		if err := checkExisting(ctx, adm, res.Existing, partitions); err != nil {
			return res, err
		}
	}
	if err := awaitTopics(ctx, adm, res.Created, partitions); err != nil {
		return res, err
	}
	return res, nil
}

// awaitTopics waits until every topic is in the metadata with all its partitions led. Kafka
// answers CreateTopics before every broker knows the topic: a service started right after
// provisioning failed with "requested topic was not found" (the embedded broker never did).
func awaitTopics(ctx context.Context, adm *kadm.Client, topics []string, partitions int) error {
	if len(topics) == 0 {
		return nil
	}
	for {
		details, err := adm.ListTopics(ctx, topics...)
		ready := err == nil
		for _, t := range topics {
			d, ok := details[t]
			if !ok || d.Err != nil || len(d.Partitions) != partitions {
				ready = false
				break
			}
			for _, p := range d.Partitions {
				if p.Err != nil || p.Leader < 0 {
					ready = false
				}
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("provision: wait for the new topics to be led: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// StreamRetention is how long stream topics keep records: a week, Kafka's default, so a
// service can be down for days and still catch up.
const StreamRetention = 7 * 24 * time.Hour

// TopicConfigs are the topic-level settings Provision creates spec with. A table keeps its
// latest value per key for good, said explicitly: Kafka ignores time and size retention on a
// compact-only topic, but the embedded broker (kfake) applies them, and deleted week-old stock
// rows and processor state (internal/broker's TestTablesKeepOldRecordsStreamsExpire).
func TopicConfigs(spec TopicSpec, replication int) map[string]*string {
	configs := map[string]*string{}
	if spec.Compact {
		configs["cleanup.policy"] = kadm.StringPtr("compact")
		configs["retention.ms"] = kadm.StringPtr("-1")
		configs["retention.bytes"] = kadm.StringPtr("-1")
	} else {
		configs["retention.ms"] = kadm.StringPtr(strconv.FormatInt(StreamRetention.Milliseconds(), 10))
	}
	if replication >= 3 {
		configs["min.insync.replicas"] = kadm.StringPtr("2")
	}
	return configs
}

func checkExisting(ctx context.Context, adm *kadm.Client, topics []string, partitions int) error {
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("provision: describe existing topics: %w", err)
	}
	var wrong []string
	for _, d := range details.Sorted() {
		if d.Err != nil {
			return fmt.Errorf("provision: describe %s: %w", d.Topic, d.Err)
		}
		if len(d.Partitions) != partitions {
			wrong = append(wrong, d.Topic+" has "+strconv.Itoa(len(d.Partitions)))
		}
	}
	if len(wrong) > 0 {
		sort.Strings(wrong)
		return fmt.Errorf("provision: topics exist with a partition count other than %d (%s): copartitioned topics must agree; recreate them or run with --partitions matching",
			partitions, strings.Join(wrong, ", "))
	}
	return nil
}

// ProvisionCluster connects to cfg's brokers and provisions cfg's topics.
func ProvisionCluster(ctx context.Context, cfg Config) (ProvisionResult, error) {
	cl, err := kgo.NewClient(ClientOptions(cfg)...)
	if err != nil {
		return ProvisionResult{}, fmt.Errorf("provision: connect: %w", err)
	}
	defer cl.Close()
	return Provision(ctx, kadm.NewClient(cl), cfg.Names(), cfg.Partitions, cfg.Replication)
}
