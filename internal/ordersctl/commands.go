package ordersctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/sampledata"
)

// The commands: each setup* binds a command's flags and returns what it runs.

func setupProvision(fs *flag.FlagSet) func(context.Context, *run) error {
	timeout := timeoutFlag(fs)
	return func(ctx context.Context, r *run) error {
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		if err := r.checkCluster(ctx); err != nil {
			return err
		}
		res, err := platform.ProvisionCluster(ctx, r.cfg)
		for _, t := range res.Created {
			fmt.Fprintf(r.stdout, "created  %s\n", t)
		}
		for _, t := range res.Existing {
			fmt.Fprintf(r.stdout, "existing %s\n", t)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(r.stdout, "%d topics: %d created, %d existing (%d partitions, replication %d)\n",
			len(res.Created)+len(res.Existing), len(res.Created), len(res.Existing), r.cfg.Partitions, r.cfg.Replication)
		return nil
	}
}

func setupInventory(fs *flag.FlagSet) func(context.Context, *run) error {
	flags := map[string]domain.Product{}
	counts := map[domain.Product]*int{}
	for _, p := range domain.Products {
		name := strings.ToLower(string(p))
		flags[name] = p
		counts[p] = fs.Int(name, 0, "stock of "+string(p))
	}
	timeout := timeoutFlag(fs)
	ifEmpty := ifEmptyFlag(fs)
	return func(ctx context.Context, r *run) error {
		stock := map[domain.Product]int32{}
		var bad error
		fs.Visit(func(f *flag.Flag) {
			p, ok := flags[f.Name]
			if !ok {
				return
			}
			n := *counts[p]
			if n < 0 || int(int32(n)) != n {
				bad = errors.Join(bad, fmt.Errorf("%w: --%s %d is not a stock count", errUsage, f.Name, n))
				return
			}
			stock[p] = int32(n)
		})
		if bad != nil {
			return bad
		}
		if len(stock) == 0 {
			stock = sampledata.DefaultStock()
		}
		cl, err := r.client(ctx)
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		topic := r.cfg.Names().Topic(string(platform.TopicWarehouseInventory))
		if skip, err := skipSeed(ctx, r, cl, *ifEmpty, topic); err != nil || skip {
			return err
		}
		if err := sampledata.SetStock(ctx, cl, r.cfg.Names(), stock); err != nil {
			return err
		}
		set := make([]string, 0, len(stock))
		for p, n := range stock {
			set = append(set, fmt.Sprintf("%s=%d", p, n))
		}
		sort.Strings(set)
		fmt.Fprintf(r.stdout, "stock set on %s: %s\n",
			r.cfg.Names().Topic(string(platform.TopicWarehouseInventory)), strings.Join(set, " "))
		return nil
	}
}

func setupCustomers(fs *flag.FlagSet) func(context.Context, *run) error {
	timeout := timeoutFlag(fs)
	ifEmpty := ifEmptyFlag(fs)
	return func(ctx context.Context, r *run) error {
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		codecs, err := r.codecs(ctx)
		if err != nil {
			return err
		}
		cl, err := r.client(ctx)
		if err != nil {
			return err
		}
		defer cl.Close()
		if skip, err := skipSeed(ctx, r, cl, *ifEmpty, r.cfg.Names().Topic(string(platform.TopicCustomers))); err != nil || skip {
			return err
		}
		customers := sampledata.SampleCustomers()
		if err := sampledata.ProduceCustomersWith(ctx, cl, r.cfg.Names(), codecs, customers); err != nil {
			return err
		}
		for _, c := range customers {
			fmt.Fprintf(r.stdout, "customer %d: %s %s <%s>, %s\n", c.ID, c.FirstName, c.LastName, c.Email, c.Level)
		}
		fmt.Fprintf(r.stdout, "%d customers written to %s\n", len(customers), r.cfg.Names().Topic(string(platform.TopicCustomers)))
		return nil
	}
}

func setupOrders(fs *flag.FlagSet) func(context.Context, *run) error {
	var load sampledata.OrderLoad
	fs.StringVar(&load.URL, "url", "http://127.0.0.1:8080", "base URL of the Orders service")
	fs.Float64Var(&load.Rate, "rate", 1, "orders started per second")
	fs.IntVar(&load.Count, "count", 0, "orders to post; 0 posts until interrupted")
	fs.StringVar(&load.IDPrefix, "id-prefix", "", "prefix of the order ids; empty picks a random one, so runs never reuse an id")
	fs.DurationVar(&load.ReadTimeout, "read-timeout", 10*time.Second, "how long each read-back waits for the order to appear")
	return func(ctx context.Context, r *run) error {
		codecs, err := r.codecs(ctx)
		if err != nil {
			return err
		}
		cl, err := r.client(ctx)
		if err != nil {
			return err
		}
		defer cl.Close()
		load.Logger = r.logger
		sum, err := sampledata.PostOrders(ctx, cl, r.cfg.Names(), codecs, load)
		fmt.Fprintln(r.stdout, sum)
		return err
	}
}

func setupTail(fs *flag.FlagSet) func(context.Context, *run) error {
	var opts sampledata.TailOptions
	fs.BoolVar(&opts.FromBeginning, "from-beginning", false, "print the records already in the topic, not only new ones")
	fs.IntVar(&opts.Max, "max", 0, "stop after this many records; 0 runs until interrupted")
	return func(ctx context.Context, r *run) error {
		if opts.Max < 0 {
			return fmt.Errorf("%w: --max %d is negative", errUsage, opts.Max)
		}
		opts.Topic = r.args[0]
		codecs, err := r.codecs(ctx)
		if err != nil {
			return err
		}
		_, err = sampledata.Tail(ctx, r.cfg, codecs, opts, r.stdout)
		return err
	}
}

// ifEmptyFlag is --if-empty of the seeding commands.
func ifEmptyFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("if-empty", false, "write only if the topic holds no records yet (seed once: a restarted deployment keeps its stock)")
}

// skipSeed reports whether seeding topic should be skipped because --if-empty is set and the
// topic already holds records.
func skipSeed(ctx context.Context, r *run, cl *kgo.Client, ifEmpty bool, topic string) (bool, error) {
	if !ifEmpty {
		return false, nil
	}
	empty, err := sampledata.TopicIsEmpty(ctx, cl, topic)
	if err != nil {
		return false, err
	}
	if !empty {
		fmt.Fprintf(r.stdout, "%s already holds records; nothing written (--if-empty)\n", topic)
	}
	return !empty, nil
}
