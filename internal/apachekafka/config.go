package apachekafka

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Properties returns the node's server.properties as written.
func (n *Node) Properties() map[string]string {
	c := n.cluster
	listeners := fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", n.Port, n.ControllerPort)
	var voters []string
	for _, peer := range c.nodes {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", peer.ID, peer.ControllerPort))
	}
	replication := strconv.Itoa(len(c.nodes))
	minISR := "1"
	if len(c.nodes) >= 3 {
		minISR = "2"
	}
	p := map[string]string{
		"process.roles":                                    "broker,controller",
		"node.id":                                          strconv.Itoa(n.ID),
		"controller.quorum.voters":                         strings.Join(voters, ","),
		"listeners":                                        listeners,
		"advertised.listeners":                             fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", n.Port),
		"controller.listener.names":                        "CONTROLLER",
		"inter.broker.listener.name":                       "PLAINTEXT",
		"listener.security.protocol.map":                   "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"log.dirs":                                         filepath.Join(n.Dir, "data"),
		"auto.create.topics.enable":                        "false",
		"offsets.topic.replication.factor":                 replication,
		"transaction.state.log.replication.factor":         replication,
		"transaction.state.log.min.isr":                    minISR,
		"share.coordinator.state.topic.replication.factor": replication,
		"share.coordinator.state.topic.min.isr":            minISR,
		// Tests and local runs start groups at once; production keeps the 3 s default.
		"group.initial.rebalance.delay.ms": "0",
		// A local broker on a laptop: modest threads, and a cleaner that looks every 5 s
		// (segments roll at 16 MiB; the active one is never compacted).
		"num.network.threads":             "2",
		"num.io.threads":                  "4",
		"log.cleaner.threads":             "1",
		"log.cleaner.backoff.ms":          "5000",
		"log.segment.bytes":               strconv.Itoa(16 << 20),
		"log.retention.check.interval.ms": "60000",
	}
	if c.opts.Secure != nil {
		for k, v := range n.secureProperties() {
			p[k] = v
		}
	}
	for k, v := range c.opts.Properties {
		p[k] = v
	}
	return p
}

func (n *Node) writeConfig() error {
	for _, d := range []string{"data", "logs"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			return fmt.Errorf("apachekafka: make node %d directories: %w", n.ID, err)
		}
	}
	props := n.Properties()
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, props[k])
	}
	if err := os.WriteFile(filepath.Join(n.Dir, "server.properties"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("apachekafka: write node %d properties: %w", n.ID, err)
	}
	log4j := fmt.Sprintf(`status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = %s
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%%d] %%p %%m (%%c)%%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.statechange.name = state.change.logger
logger.statechange.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
`, n.LogPath())
	if err := os.WriteFile(filepath.Join(n.Dir, "log4j2.properties"), []byte(log4j), 0o644); err != nil {
		return fmt.Errorf("apachekafka: write node %d log config: %w", n.ID, err)
	}
	return nil
}

func (n *Node) format(ctx context.Context) error {
	args := append([]string{"format", "-t", n.cluster.clusterID,
		"-c", filepath.Join(n.Dir, "server.properties"), "--ignore-formatted"}, n.cluster.scramFormatArgs()...)
	_, err := n.cluster.runTool(ctx, args...)
	if err != nil {
		return fmt.Errorf("apachekafka: format node %d storage: %w", n.ID, err)
	}
	return nil
}
