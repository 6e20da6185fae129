// Package orders is the Orders service: the REST API of SPEC.md over a materialized view of
// the `orders` topic that is partitioned across instances.
//
// Each instance keeps the orders of the partitions it owns in a goka group table. GETs
// long-poll until the order (or its final state) is there, through a registry of waiters
// released by the view. A GET or POST that reaches an instance not owning the key's partition
// is forwarded once to the owner found in the membership table, which every instance
// publishes to when it has taken over and recovered partitions. While partitions move
// (goka pauses ~5 s on every rebalance) requests keep re-resolving the owner until their
// deadline, so a rebalance is invisible to clients with time left.
package orders

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/metrics"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/service"
	"github.com/ordersys/ecosystem/internal/validation"
)

// Service is one Orders instance.
type Service struct {
	cfg        Config
	names      platform.Names
	partitions int32
	self       string // advertised address

	ln         net.Listener
	view       *service.Supervised
	aggregator *service.Supervised
	membership *goka.View
	announcer  *goka.Emitter
	writer     *goka.Emitter
	ownership  *Ownership
	waiters    *Waiters
	pending    pendingWrites
	locks      keyLocks
	client     *http.Client
	// drained ends DrainTimeout after shutdown began: requests still waiting then are
	// answered ErrShuttingDown (requestContext).
	drained  context.Context
	endDrain context.CancelFunc

	// Health reports readiness: view recovered, membership known, a group session held.
	Health *service.Health
}

// New builds an instance: it checks the topics exist, opens the listener (so the advertised
// address is known before the first announcement) and builds the processors, view and
// emitters. Nothing runs until Run.
func New(ctx context.Context, cfg Config) (*Service, error) {
	codecs, err := platform.CodecsFor(ctx, cfg.Kafka)
	if err != nil {
		return nil, fmt.Errorf("orders: %w", err)
	}
	names := cfg.Kafka.Names()
	partitions, err := topicPartitions(ctx, cfg.Kafka, names.Topic(string(platform.TopicOrders)))
	if err != nil {
		return nil, fmt.Errorf("orders: %w", err)
	}
	ln, err := service.Listen(cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("orders: %w", err)
	}
	s := &Service{
		cfg:        cfg,
		names:      names,
		partitions: partitions,
		self:       advertised(cfg.AdvertisedAddr, ln.Addr()),
		ln:         ln,
		waiters:    NewWaiters(cfg.MaxWaiters),
		client: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		}},
		Health: service.NewHealth(),
	}
	s.pending.byID = map[string]*pendingWrite{}
	s.drained, s.endDrain = context.WithCancel(context.Background())
	fail := func(err error) (*Service, error) {
		_ = ln.Close()
		return nil, fmt.Errorf("orders: %w", err)
	}

	g := platform.NewGoka(cfg.Kafka)
	s.ownership = &Ownership{topic: names.Topic(string(platform.TopicOrders)), announce: s.announce}
	if s.announcer, err = g.NewEmitter(names.Stream(goka.Stream(platform.TopicOrdersMembership)), platform.JSONCodec[Owner]{}); err != nil {
		return fail(err)
	}
	if s.writer, err = g.NewEmitter(names.Stream(platform.TopicOrders), codecs.Order); err != nil {
		return fail(err)
	}
	if s.membership, err = g.NewView("orders-membership", names.Table(platform.TopicOrdersMembership), candidatesCodec{},
		goka.WithViewCallback(membershipCallback(partitions))); err != nil {
		return fail(err)
	}
	viewGoka := *g
	viewGoka.ConsumerGroupBuilder = s.ownership.ConsumerGroupBuilder(g.SaramaConsumerGroupBuilder())
	viewGraph := ViewGraph(names, codecs, s.stored)
	if s.view, err = service.NewSupervised(string(viewGraph.Group()), func() (*goka.Processor, error) { return viewGoka.NewProcessor(viewGraph) }); err != nil {
		return fail(err)
	}
	// A failed view serves nothing until its replacement has recovered and announced itself.
	s.view.OnFailure = s.ownership.clear
	if cfg.Aggregator {
		aggGraph := validation.Graph(names, codecs)
		if s.aggregator, err = service.NewSupervised(string(aggGraph.Group()), func() (*goka.Processor, error) { return g.NewProcessor(aggGraph) }); err != nil {
			return fail(err)
		}
		s.Health.AddSupervised(s.aggregator)
	}
	s.Health.AddSupervised(s.view)
	s.Health.AddView("membership", s.membership)
	s.Health.Add("group session", func() error {
		if s.ownership.Generation() == 0 {
			return errors.New("no group session yet")
		}
		return nil
	})
	return s, nil
}

// topicPartitions learns the partition count of topic, which routing needs, and fails clearly
// when the topics were not provisioned.
func topicPartitions(ctx context.Context, cfg platform.Config, topic string) (int32, error) {
	cl, err := kgo.NewClient(platform.ClientOptions(cfg)...)
	if err != nil {
		return 0, fmt.Errorf("connect to brokers: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("describe %s: %w", topic, err)
	}
	d, ok := details[topic]
	if !ok || d.Err != nil || len(d.Partitions) == 0 {
		return 0, fmt.Errorf("topic %s does not exist: provision the topics first (ordersctl provision)", topic)
	}
	return int32(len(d.Partitions)), nil
}

// advertised returns the address other instances should use.
func advertised(configured string, listen net.Addr) string {
	if configured != "" {
		return configured
	}
	tcp, ok := listen.(*net.TCPAddr)
	switch {
	case !ok:
		return listen.String()
	case tcp.IP.IsUnspecified():
		return fmt.Sprintf("127.0.0.1:%d", tcp.Port)
	}
	return tcp.String()
}

// Addr is the address the REST API listens on.
func (s *Service) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends or a part fails. On shutdown it first fails readiness and lets
// in-flight requests finish (they may still need the view) — those still waiting after
// DrainTimeout are answered 503 with Retry-After — then stops the processors, which leave the
// group cleanly, and flushes the emitters.
func (s *Service) Run(ctx context.Context) error {
	defer metrics.TrackWaiters(s.waiters.Len)()
	procCtx, stopProcs := context.WithCancel(context.Background())
	defer stopProcs()
	procs, procsCtx := service.NewGroup(procCtx)
	procs.Go("orders view", s.view.Run)
	procs.Go("membership view", func(ctx context.Context) error { return service.RunView(ctx, s.membership) })
	procs.Go("ownership re-announcements", func(ctx context.Context) error { return s.reannounce(ctx, s.cfg.AnnounceInterval) })
	if s.aggregator != nil {
		procs.Go("validations aggregator", s.aggregator.Run)
	}

	httpCtx, stopHTTP := context.WithCancel(ctx)
	defer stopHTTP()
	httpDone := make(chan error, 1)
	go func() { httpDone <- service.Serve(httpCtx, s.ln, s.Handler()) }()

	var httpErr error
	httpFinished := false
	select {
	case <-ctx.Done():
	case <-procsCtx.Done():
	case httpErr = <-httpDone:
		httpFinished = true
	}
	s.Health.SetStopping()
	// Requests already waiting may still get their answer for a while, then 503 (the HTTP
	// server waits for them); the processors keep running until then, since answers come
	// from the view.
	drainTimer := time.AfterFunc(s.cfg.DrainTimeout, s.endDrain)
	defer drainTimer.Stop()
	defer s.endDrain()
	stopHTTP()
	if !httpFinished {
		httpErr = <-httpDone
	}
	stopProcs()
	procErr := procs.Wait()
	emitErr := errors.Join(s.announcer.Finish(), s.writer.Finish())
	s.client.CloseIdleConnections()
	if err := errors.Join(procErr, httpErr, emitErr); err != nil {
		return fmt.Errorf("orders: %w", err)
	}
	return nil
}

// stored is called by the view for every order version it stores.
func (s *Service) stored(o domain.Order) {
	s.pending.remove(o.ID)
	s.waiters.Notify(o)
}

// owner returns the membership entry of partition p to route to (ownerCandidates.best).
func (s *Service) owner(p int32) (Owner, bool) {
	v, err := s.membership.Get(membershipKey(p))
	if err != nil || v == nil {
		return Owner{}, false
	}
	c, ok := v.(*ownerCandidates)
	if !ok {
		return Owner{}, false
	}
	return c.best(s.ownership.Newest())
}

// lookup reads an order from the local view; nil when absent. It fails with ErrNotOwner when
// the partition is not (or no longer) served here.
func (s *Service) lookup(id string, p int32) (*domain.Order, error) {
	if !s.ownership.Owns(p) {
		return nil, ErrNotOwner
	}
	v, err := s.view.Processor().Get(id)
	if err != nil {
		if !s.ownership.Owns(p) {
			return nil, ErrNotOwner
		}
		return nil, fmt.Errorf("read order %s from the view: %w", id, err)
	}
	if v == nil {
		return nil, nil
	}
	o := v.(domain.Order)
	return &o, nil
}

// Waiting is the number of requests waiting for an order in this instance's view.
func (s *Service) Waiting() int { return s.waiters.Len() }

// Generation is the group generation of the session whose partitions this instance serves.
func (s *Service) Generation() int32 { return s.ownership.Generation() }

// OwnedPartitions lists the view partitions this instance serves right now.
func (s *Service) OwnedPartitions() []int32 { return s.ownership.Owned() }
