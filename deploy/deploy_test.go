// Package deploy_test keeps deploy/Dockerfile and deploy/docker-compose.yml honest without a
// Docker engine: it loads the compose file with compose-go (the loader docker compose uses, so
// the Compose specification's own validation runs first), parses the Dockerfile, and checks
// both against what they run. Each container's
// command flags and environment variables must be ones its binary accepts (read from the
// binary's own --help), published ports must be loopback-only and lead to an address the
// service listens on, start-up order must be coherent, and the Dockerfile's build command,
// run here as written, must produce every binary compose asks for, statically linked.
//
// A compose service whose cmd/<binary> does not exist fails its subtest by name: the files
// describe the whole ecosystem, so a missing binary is a defect, not a reason to skip.
package deploy_test

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/ordersys/ecosystem/internal/apachekafka"
)

// wantServices are the containers compose must run, each with the binary it runs.
var wantServices = map[string]string{
	"provision": "ordersctl",
	"orders":    "orders",
	"details":   "details",
	"fraud":     "fraud",
	"inventory": "inventory",
	"email":     "email",
}

// statefulServices keep goka state (LevelDB) that must outlive a container.
var statefulServices = []string{"orders", "fraud", "inventory", "email"}

const (
	kafkaService  = "kafka"
	provision     = "provision"
	oneShotBinary = "ordersctl" // its containers run one command and exit
	dockerfileRef = "deploy/Dockerfile"
)

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isOneShot(s types.ServiceConfig) bool {
	return buildArg(s, "SERVICE") == oneShotBinary
}

func TestComposeHasEveryService(t *testing.T) {
	c := loadCompose(t)
	for _, name := range append([]string{kafkaService}, sortedKeys(wantServices)...) {
		t.Run(name, func(t *testing.T) {
			s, ok := c.Services[name]
			if !ok {
				t.Fatalf("no service %q in docker-compose.yml", name)
			}
			if want, ok := wantServices[name]; ok {
				if buildArg(s, "SERVICE") != want {
					t.Fatalf("service %q must build SERVICE=%s from %s, has build %+v", name, want, dockerfileRef, s.Build)
				}
				if !cmdExists(t, want) {
					t.Fatalf("cmd/%s does not exist (yet): service %q runs it; it must exist before this merges", want, name)
				}
			}
		})
	}
	t.Run("no ZooKeeper", func(t *testing.T) {
		for name, s := range c.Services {
			if strings.Contains(strings.ToLower(s.Image+name), "zookeeper") {
				t.Errorf("service %q looks like ZooKeeper; Kafka runs in KRaft mode", name)
			}
			for k := range envOf(s) {
				if strings.Contains(k, "ZOOKEEPER") {
					t.Errorf("service %q sets %s; Kafka runs in KRaft mode", name, k)
				}
			}
		}
	})
	t.Run("every other service is built from the Dockerfile", func(t *testing.T) {
		for _, name := range sortedKeys(c.Services) {
			if s := c.Services[name]; name != kafkaService && s.Build == nil {
				t.Errorf("service %q is neither Kafka nor built from %s", name, dockerfileRef)
			}
		}
	})
	t.Run("top-level extension keys", func(t *testing.T) {
		// compose-go refuses unknown top-level keys itself; the extensions it keeps are the
		// x- blocks that hold the file's anchors.
		for k := range c.Extensions {
			if !strings.HasPrefix(k, "x-") {
				t.Errorf("unknown top-level key %q (extensions must start with x-)", k)
			}
		}
		if len(c.Extensions) == 0 {
			t.Errorf("no x- blocks: the file's shared settings (anchors) are gone")
		}
	})
}

// The loader refuses what docker compose would refuse, so the checks above never run on a
// file compose cannot start: each case breaks one thing in a copy of the real file.
func TestComposeLoaderRefusesBrokenFiles(t *testing.T) {
	b, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	original := string(b)
	cases := []struct {
		name, old, new string
	}{
		{"misspelt service key", "    restart: unless-stopped", "    restrat: unless-stopped"},
		{"unknown top-level key", "\nvolumes:\n", "\nvolume:\n"},
		{"undeclared named volume", "orders-state:/", "orders-stat:/"},
		{"undefined anchor", "<<: *kafka-env", "<<: *kafka-envs"},
		{"dependency on no service", "    provision:\n      condition: service_completed_successfully", "    provisioning:\n      condition: service_completed_successfully"},
		{"port that is no number", "127.0.0.1:8080:", "127.0.0.1:80a0:"},
		{"unknown depends_on condition", "condition: service_healthy", "condition: service_ready"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(original, c.old) {
				t.Fatalf("docker-compose.yml no longer contains %q: update the case", c.old)
			}
			path := filepath.Join(t.TempDir(), "docker-compose.yml")
			if err := os.WriteFile(path, []byte(strings.Replace(original, c.old, c.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := loadComposeFile(path); err == nil {
				t.Fatalf("loaded with %q in place of %q", c.new, c.old)
			} else {
				t.Logf("refused: %v", err)
			}
		})
	}
}

// kafkaListeners parses "NAME://host:port,..." into name → host:port.
func kafkaListeners(t *testing.T, v string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range strings.Split(v, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(l), "://")
		if !ok {
			t.Fatalf("listener %q is not NAME://host:port", l)
		}
		out[name] = addr
	}
	return out
}

func TestComposeKafka(t *testing.T) {
	c := loadCompose(t)
	k, ok := c.Services[kafkaService]
	if !ok {
		t.Fatalf("no %s service", kafkaService)
	}
	env := envOf(k)
	listeners := kafkaListeners(t, env["KAFKA_LISTENERS"])
	advertised := kafkaListeners(t, env["KAFKA_ADVERTISED_LISTENERS"])

	cases := []struct {
		name  string
		check func() error
	}{
		{"official image, pinned", func() error {
			repo, tag, _ := strings.Cut(k.Image, ":")
			if repo != "apache/kafka" || tag == "" || tag == "latest" {
				return fmt.Errorf("image %q: want apache/kafka:<version>", k.Image)
			}
			if tag != apachekafka.DefaultVersion {
				return fmt.Errorf("image %q: the suite runs on Kafka %s (make test-kafka); deploy that release", k.Image, apachekafka.DefaultVersion)
			}
			return nil
		}},
		{"KRaft combined broker and controller", func() error {
			roles := strings.Split(env["KAFKA_PROCESS_ROLES"], ",")
			if !slices.Contains(roles, "broker") || !slices.Contains(roles, "controller") {
				return fmt.Errorf("KAFKA_PROCESS_ROLES %q", env["KAFKA_PROCESS_ROLES"])
			}
			for _, key := range []string{"KAFKA_NODE_ID", "CLUSTER_ID", "KAFKA_CONTROLLER_QUORUM_VOTERS", "KAFKA_CONTROLLER_LISTENER_NAMES"} {
				if env[key] == "" {
					return fmt.Errorf("%s is not set", key)
				}
			}
			voter := env["KAFKA_NODE_ID"] + "@"
			ctrl := listeners[env["KAFKA_CONTROLLER_LISTENER_NAMES"]]
			if ctrlPort, err := portOf(ctrl); err != nil || !strings.HasPrefix(env["KAFKA_CONTROLLER_QUORUM_VOTERS"], voter) ||
				!strings.HasSuffix(env["KAFKA_CONTROLLER_QUORUM_VOTERS"], ":"+strconv.Itoa(ctrlPort)) {
				return fmt.Errorf("quorum voters %q do not name node %s on the controller listener %q",
					env["KAFKA_CONTROLLER_QUORUM_VOTERS"], env["KAFKA_NODE_ID"], ctrl)
			}
			if _, ok := advertised[env["KAFKA_CONTROLLER_LISTENER_NAMES"]]; ok {
				return fmt.Errorf("the controller listener is advertised to clients")
			}
			return nil
		}},
		{"single-node replication of internal topics", func() error {
			for _, key := range []string{"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"} {
				if env[key] != "1" {
					return fmt.Errorf("%s = %q, want 1 on one broker", key, env[key])
				}
			}
			return nil
		}},
		{"topics come only from provisioning", func() error {
			if env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] != "false" {
				return fmt.Errorf("KAFKA_AUTO_CREATE_TOPICS_ENABLE = %q: an auto-created topic would get the wrong partition count", env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"])
			}
			return nil
		}},
		{"every advertised listener is a listener on the same port", func() error {
			for name, addr := range advertised {
				l, ok := listeners[name]
				if !ok {
					return fmt.Errorf("advertised listener %s is not in KAFKA_LISTENERS", name)
				}
				lp, err1 := portOf(l)
				ap, err2 := portOf(addr)
				if err1 != nil || err2 != nil || lp != ap {
					return fmt.Errorf("listener %s listens on %q but is advertised as %q", name, l, addr)
				}
			}
			return nil
		}},
		{"healthcheck", func() error {
			h := k.HealthCheck
			if h == nil || h.Disable || len(h.Test) < 2 || (h.Test[0] != "CMD" && h.Test[0] != "CMD-SHELL") {
				return fmt.Errorf("healthcheck %+v: want a CMD or CMD-SHELL test", h)
			}
			// compose-go has parsed the durations; a zero one would make docker poll flat out.
			for _, d := range []*types.Duration{h.Interval, h.Timeout} {
				if d != nil && time.Duration(*d) <= 0 {
					return fmt.Errorf("healthcheck interval or timeout %v is not positive", time.Duration(*d))
				}
			}
			return nil
		}},
		{"published ports are loopback listeners advertised to the host", func() error {
			for _, ps := range k.Ports {
				p, err := publishedPort(ps)
				if err != nil {
					return err
				}
				if p.IP != "127.0.0.1" {
					return fmt.Errorf("port %s is not bound to 127.0.0.1", p.Published)
				}
				found := false
				for name, l := range listeners {
					if lp, _ := portOf(l); lp == p.Container {
						found = true
						host, aport, _ := net.SplitHostPort(advertised[name])
						if (host != "127.0.0.1" && host != "localhost") || aport != strconv.Itoa(p.Host) {
							return fmt.Errorf("port %s reaches listener %s, advertised as %q: host clients would be sent elsewhere", p.Published, name, advertised[name])
						}
					}
				}
				if !found {
					return fmt.Errorf("port %s: no listener on container port %d", p.Published, p.Container)
				}
			}
			return nil
		}},
		{"log directory on a named volume", func() error {
			return onNamedVolume(c, k, env["KAFKA_LOG_DIRS"])
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// onNamedVolume checks that dir is the mount point of a volume declared at the top level.
func onNamedVolume(c *types.Project, s types.ServiceConfig, dir string) error {
	if dir == "" {
		return fmt.Errorf("no directory configured")
	}
	for _, v := range s.Volumes {
		if v.Target != dir {
			continue
		}
		if _, ok := c.Volumes[v.Source]; v.Type != types.VolumeTypeVolume || !ok {
			return fmt.Errorf("%s %q mounted on %s is not a named volume declared under volumes:", v.Type, v.Source, dir)
		}
		return nil
	}
	return fmt.Errorf("%s is not on a volume: its state would be lost with the container", dir)
}

// brokerAddrs are the addresses the Kafka service advertises on the compose network.
func brokerAddrs(c *types.Project) map[string]bool {
	k := c.Services[kafkaService]
	names := map[string]bool{kafkaService: true}
	if k.Hostname != "" {
		names[k.Hostname] = true
	}
	out := map[string]bool{}
	for _, l := range strings.Split(envOf(k)["KAFKA_ADVERTISED_LISTENERS"], ",") {
		_, addr, _ := strings.Cut(strings.TrimSpace(l), "://")
		if host, _, err := net.SplitHostPort(addr); err == nil && names[host] {
			out[addr] = true
		}
	}
	return out
}

// checkValue checks a value against a flag's type as --help prints it.
func checkValue(f flagInfo, v string) error {
	var err error
	switch f.Type {
	case "":
		_, err = strconv.ParseBool(v)
	case "int":
		_, err = strconv.Atoi(v)
	case "float":
		_, err = strconv.ParseFloat(v, 64)
	case "duration":
		_, err = time.ParseDuration(v)
	}
	if err != nil {
		return fmt.Errorf("flag -%s: value %q: %w", f.Name, v, err)
	}
	return nil
}

// parseArgs reads a container's command as the flag package would, returning flag → value.
func parseArgs(bf binaryFlags, args []string) (map[string]string, error) {
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			return nil, fmt.Errorf("argument %q is not a flag (the binary takes no positional arguments here)", a)
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f, ok := bf.Flags[name]
		if !ok {
			return nil, fmt.Errorf("flag %q is not accepted by the binary", a)
		}
		if !hasValue {
			if f.Type == "" {
				value = "true"
			} else {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("flag %q needs a value", a)
				}
				i++
				value = args[i]
			}
		}
		if err := checkValue(f, value); err != nil {
			return nil, err
		}
		out[name] = value
	}
	return out, nil
}

func TestComposeContainersMatchTheirBinaries(t *testing.T) {
	c := loadCompose(t)
	d := loadDockerfile(t)
	imageEnv := d.Stages[len(d.Stages)-1].Env
	brokers := brokerAddrs(c)
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if name == kafkaService {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if s.Build == nil {
				t.Fatalf("not built from %s", dockerfileRef)
			}
			// compose-go resolves the context against the file's directory.
			if s.Build.Dockerfile != dockerfileRef || s.Build.Context != repoRoot(t) {
				t.Fatalf("build context %q, dockerfile %q: want context .. (the repository root, %s) and dockerfile %s",
					s.Build.Context, s.Build.Dockerfile, repoRoot(t), dockerfileRef)
			}
			binary := buildArg(s, "SERVICE")
			if binary == "" {
				t.Fatal("build arg SERVICE is not set")
			}
			if !cmdExists(t, binary) {
				t.Fatalf("cmd/%s does not exist (yet): service %q runs it; it must exist before this merges", binary, name)
			}
			if len(s.Entrypoint) > 0 {
				t.Fatalf("entrypoint %q overrides the image's binary", s.Entrypoint)
			}

			args := []string(s.Command)
			sub := ""
			if binary == oneShotBinary {
				if len(args) == 0 || strings.HasPrefix(args[0], "-") {
					t.Fatalf("command %q: %s needs a subcommand first", args, binary)
				}
				sub, args = args[0], args[1:]
			}
			bf := helpOf(t, binary, sub)
			given, err := parseArgs(bf, args)
			if err != nil {
				t.Fatalf("command %q: %v", s.Command, err)
			}
			senv := envOf(s)
			for _, k := range sortedKeys(senv) {
				flagName, ok := bf.Envs[k]
				if !ok {
					t.Errorf("environment %s is not read by %s (its --help names no such variable)", k, binary)
					continue
				}
				if f, ok := bf.Flags[flagName]; ok {
					if err := checkValue(f, senv[k]); err != nil {
						t.Errorf("environment %s: %v", k, err)
					}
				}
			}
			for _, k := range sortedKeys(imageEnv) {
				if _, ok := bf.Envs[k]; !ok {
					t.Errorf("the Dockerfile sets %s, which %s does not read", k, binary)
				}
			}

			// effective is a flag's value in this container: command, then environment, then the
			// image's environment, then the binary's default.
			effective := func(flagName string) string {
				if v, ok := given[flagName]; ok {
					return v
				}
				f := bf.Flags[flagName]
				if v, ok := senv[f.Env]; ok && f.Env != "" {
					return v
				}
				if v, ok := imageEnv[f.Env]; ok && f.Env != "" {
					return v
				}
				return f.Def
			}

			for _, b := range strings.Split(effective("brokers"), ",") {
				if !brokers[strings.TrimSpace(b)] {
					t.Errorf("brokers %q: %q is not an address the Kafka service advertises on the network (%v)", effective("brokers"), b, brokers)
				}
			}

			listen := map[int]string{} // port → flag
			for _, f := range bf.Flags {
				if !strings.Contains(f.Usage, "listen address") {
					continue
				}
				v := effective(f.Name)
				if v == "" {
					continue
				}
				p, err := portOf(v)
				if err != nil {
					t.Errorf("-%s %q: %v", f.Name, v, err)
					continue
				}
				listen[p] = f.Name
			}
			for _, ps := range s.Ports {
				p, err := publishedPort(ps)
				if err != nil {
					t.Error(err)
					continue
				}
				if p.IP != "127.0.0.1" {
					t.Errorf("port %s is not bound to 127.0.0.1", p.Published)
				}
				if _, ok := listen[p.Container]; !ok {
					t.Errorf("port %s: the service listens on no container port %d (listen addresses: %v)", p.Published, p.Container, listen)
				}
			}

			if _, ok := bf.Flags["advertised-addr"]; ok {
				adv := effective("advertised-addr")
				host, advPort, err := net.SplitHostPort(adv)
				httpPort, herr := portOf(effective("http-addr"))
				switch {
				case adv == "":
					t.Errorf("ADVERTISED_ADDR is not set: the default derives 127.0.0.1, which other containers cannot reach")
				case err != nil || herr != nil:
					t.Errorf("advertised address %q or http address %q: %v %v", adv, effective("http-addr"), err, herr)
				case host != name && host != s.Hostname:
					t.Errorf("advertised address %q: host must be the compose service name %q", adv, name)
				case advPort != strconv.Itoa(httpPort):
					t.Errorf("advertised address %q does not carry the HTTP port %d", adv, httpPort)
				}
			}
			if name == "orders" {
				if p, ok := listenPortPublished(s, 8080); !ok {
					t.Errorf("the REST API is not published on 127.0.0.1:8080 (ports %v)", s.Ports)
				} else if listen[p] == "" {
					t.Errorf("127.0.0.1:8080 does not lead to a listen address")
				}
			}

			if slices.Contains(statefulServices, name) {
				if _, ok := senv["STATE_DIR"]; !ok {
					t.Errorf("STATE_DIR is not set")
				}
				if err := onNamedVolume(c, s, effective("state-dir")); err != nil {
					t.Errorf("state directory: %v", err)
				}
			}

			switch {
			case isOneShot(s) && s.Restart != "" && s.Restart != "no":
				t.Errorf("one-shot container has restart %q: it must be allowed to complete", s.Restart)
			case !isOneShot(s) && s.Restart != "unless-stopped" && s.Restart != "always" && s.Restart != "on-failure":
				t.Errorf("long-running service has restart %q", s.Restart)
			}
		})
	}
}

// listenPortPublished returns the container port published on 127.0.0.1:hostPort.
func listenPortPublished(s types.ServiceConfig, hostPort int) (int, bool) {
	for _, ps := range s.Ports {
		if p, err := publishedPort(ps); err == nil && p.IP == "127.0.0.1" && p.Host == hostPort {
			return p.Container, true
		}
	}
	return 0, false
}

func TestComposeStartOrder(t *testing.T) {
	c := loadCompose(t)
	conditions := []string{"service_started", "service_healthy", "service_completed_successfully"}
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		t.Run(name, func(t *testing.T) {
			for _, dep := range sortedKeys(s.DependsOn) {
				cond := s.DependsOn[dep].Condition
				target, ok := c.Services[dep]
				switch {
				case !ok:
					t.Errorf("depends on %q, which is no service", dep)
				case !slices.Contains(conditions, cond):
					t.Errorf("depends on %s with unknown condition %q", dep, cond)
				case dep == kafkaService && cond != "service_healthy":
					t.Errorf("depends on Kafka with %s: it must wait until Kafka is healthy", cond)
				case cond == "service_healthy" && (target.HealthCheck == nil || target.HealthCheck.Disable):
					t.Errorf("waits for %s to be healthy, but it has no healthcheck", dep)
				case cond == "service_completed_successfully" && !isOneShot(target):
					t.Errorf("waits for %s to complete, but it is a long-running service", dep)
				case isOneShot(target) && cond != "service_completed_successfully":
					t.Errorf("depends on one-shot %s with %s: it must wait for it to complete successfully", dep, cond)
				}
			}
			switch {
			case name == kafkaService:
				if len(s.DependsOn) > 0 {
					t.Errorf("Kafka depends on %v", s.DependsOn)
				}
			case name == provision:
				if s.DependsOn[kafkaService].Condition != "service_healthy" {
					t.Errorf("provision must wait for Kafka to be healthy; depends_on %v", s.DependsOn)
				}
			default:
				if s.DependsOn[provision].Condition != "service_completed_successfully" {
					t.Errorf("must wait for provision to complete successfully (the topics must exist); depends_on %v", s.DependsOn)
				}
			}
			if name == "orders" {
				for _, other := range sortedKeys(c.Services) {
					if _, waits := s.DependsOn[other]; other != provision && isOneShot(c.Services[other]) && !waits {
						t.Errorf("orders does not wait for seed %s: the README's first request could find no sample data", other)
					}
				}
			}
		})
	}
	t.Run("no cycles", func(t *testing.T) {
		state := map[string]int{} // 1 visiting, 2 done
		var visit func(n string, path []string)
		visit = func(n string, path []string) {
			switch state[n] {
			case 1:
				t.Fatalf("dependency cycle: %v", append(path, n))
			case 2:
				return
			}
			state[n] = 1
			for dep := range c.Services[n].DependsOn {
				visit(dep, append(path, n))
			}
			state[n] = 2
		}
		for _, n := range sortedKeys(c.Services) {
			visit(n, nil)
		}
	})
}

// goVersionAtLeast compares dotted versions numerically: "1.26" >= "1.26.0".
func goVersionAtLeast(have, want string) bool {
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i := 0; i < len(w); i++ {
		if i >= len(h) {
			// An image tag without a patch level is the newest patch release.
			return true
		}
		hn, _ := strconv.Atoi(h[i])
		wn, _ := strconv.Atoi(w[i])
		if hn != wn {
			return hn > wn
		}
	}
	return true
}

func TestDockerfile(t *testing.T) {
	d := loadDockerfile(t)
	c := loadCompose(t)
	root := repoRoot(t)

	var build *stage
	var buildRun string
	for _, st := range d.Stages {
		for _, in := range st.Body {
			if in.Cmd == "RUN" && strings.Contains(in.Args, "go build") {
				build, buildRun = st, in.Args
			}
		}
	}
	if build == nil {
		t.Fatal("no stage runs go build")
	}
	final := d.Stages[len(d.Stages)-1]

	// The go build command as written, up to the next shell operator.
	goBuild := buildRun[strings.Index(buildRun, "go build"):]
	for _, op := range []string{"&&", ";", "||"} {
		if i := strings.Index(goBuild, op); i >= 0 {
			goBuild = goBuild[:i]
		}
	}
	words := shellWords(goBuild)
	outDir := ""
	var patterns []string
	for i, w := range words {
		if w == "-o" && i+1 < len(words) {
			outDir = words[i+1]
		}
		if strings.HasPrefix(w, "./") {
			patterns = append(patterns, w)
		}
	}

	services := map[string]bool{}
	for _, s := range c.Services {
		if s.Build != nil {
			services[buildArg(s, "SERVICE")] = true
		}
	}

	t.Run("builder has the Go of go.mod", func(t *testing.T) {
		if !strings.HasPrefix(build.Base, "golang:") {
			t.Fatalf("build stage is FROM %s, want golang:", build.Base)
		}
		tag := strings.TrimPrefix(build.Base, "golang:")
		tag = strings.ReplaceAll(tag, "${GO_VERSION}", d.GlobalArgs["GO_VERSION"])
		version, _, _ := strings.Cut(tag, "-")
		mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		for _, l := range strings.Split(string(mod), "\n") {
			if strings.HasPrefix(l, "go ") {
				want = strings.TrimSpace(strings.TrimPrefix(l, "go "))
			}
		}
		if want == "" || !goVersionAtLeast(version, want) {
			t.Fatalf("builder Go %q is older than go.mod's go %s", version, want)
		}
	})
	t.Run("static build of every binary compose runs", func(t *testing.T) {
		if build.Env["CGO_ENABLED"] != "0" && !strings.Contains(buildRun, "CGO_ENABLED=0") {
			t.Fatalf("the build stage does not set CGO_ENABLED=0")
		}
		if !strings.HasSuffix(outDir, "/") {
			t.Fatalf("go build -o %q: want a directory (ending in /) receiving every binary", outDir)
		}
		for _, svc := range sortedKeys(services) {
			if !cmdExists(t, svc) {
				t.Errorf("SERVICE %s: cmd/%s does not exist (yet); it must exist before this merges", svc, svc)
				continue
			}
			if !slices.Contains(patterns, "./cmd/...") && !slices.Contains(patterns, "./cmd/"+svc) {
				t.Errorf("SERVICE %s: go build %v does not build ./cmd/%s", svc, patterns, svc)
			}
		}
	})
	t.Run("the build command works as written", func(t *testing.T) {
		// Run the Dockerfile's go build, with its stage environment, into a temporary
		// directory, and check that every binary compose asks for comes out statically linked.
		tmp := t.TempDir()
		args := slices.Clone(words[1:])
		for i := range args {
			if args[i] == outDir {
				args[i] = tmp + string(filepath.Separator)
			}
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		cmd.Env = os.Environ()
		for k, v := range build.Env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		for _, svc := range sortedKeys(services) {
			f, err := elf.Open(filepath.Join(tmp, svc))
			if err != nil {
				t.Errorf("SERVICE %s: no binary: %v", svc, err)
				continue
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("SERVICE %s: binary is dynamically linked; the final image has no C library", svc)
				}
			}
			f.Close()
		}
	})
	t.Run("final image runs the binary SERVICE names, as non-root, on a minimal base", func(t *testing.T) {
		if !strings.HasPrefix(final.Base, "gcr.io/distroless/static") && final.Base != "scratch" {
			t.Errorf("final stage FROM %s: want distroless static or scratch", final.Base)
		}
		user := ""
		var entrypoint []string
		var from []string
		for _, in := range final.Body {
			switch in.Cmd {
			case "USER":
				user = in.Args
			case "ENTRYPOINT":
				if err := json.Unmarshal([]byte(in.Args), &entrypoint); err != nil {
					t.Errorf("ENTRYPOINT %s is not in exec form: signals would go to a shell", in.Args)
				}
			case "COPY":
				for _, f := range strings.Fields(in.Args) {
					if s, ok := strings.CutPrefix(f, "--from="); ok {
						from = append(from, s)
					}
				}
			}
		}
		if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
			t.Errorf("USER %q: the final image must run as non-root", user)
		}
		if len(entrypoint) == 0 {
			t.Errorf("no ENTRYPOINT")
		}
		// The final image must copy either the build output named by SERVICE, or the file a
		// stage declaring ARG SERVICE made from it (cp/mv of the build output): mentioning the
		// binary in a check does not count.
		binary := regexp.QuoteMeta(outDir) + `\$\{?SERVICE\}?`
		isBinary := regexp.MustCompile(`^"?` + binary + `"?$`)
		moved := regexp.MustCompile(`\b(?:cp|mv|install)\s+(?:-\S+\s+)*"?` + binary + `"?\s+"?([^"\s;&|]+)`)
		picked := false
		for _, in := range final.Body {
			if in.Cmd != "COPY" {
				continue
			}
			f := strings.Fields(in.Args)
			var srcFrom string
			var srcs []string
			for _, w := range f[:len(f)-1] {
				if s, ok := strings.CutPrefix(w, "--from="); ok {
					srcFrom = s
				} else if !strings.HasPrefix(w, "--") {
					srcs = append(srcs, w)
				}
			}
			src := d.stage(srcFrom)
			if src == nil || len(srcs) != 1 {
				continue
			}
			_, finalArg := final.Args["SERVICE"]
			_, srcArg := src.Args["SERVICE"]
			if isBinary.MatchString(srcs[0]) && finalArg {
				picked = true
			}
			for _, run := range src.Body {
				if m := moved.FindStringSubmatch(run.Args); run.Cmd == "RUN" && srcArg && m != nil && m[1] == srcs[0] {
					picked = true
				}
			}
		}
		if !picked {
			t.Errorf("no stage declaring ARG SERVICE takes %s${SERVICE} into the final image", outDir)
		}
		for _, f := range from {
			if d.stage(f) == nil {
				t.Errorf("COPY --from=%s: no such stage", f)
			}
		}
	})
	t.Run("copied sources exist and are not ignored", func(t *testing.T) {
		ignore := dockerignore(t)
		for _, st := range d.Stages {
			for _, in := range st.Body {
				if in.Cmd != "COPY" || strings.Contains(in.Args, "--from=") {
					continue
				}
				f := strings.Fields(in.Args)
				for _, src := range f[:len(f)-1] {
					if strings.HasPrefix(src, "--") {
						continue
					}
					if _, err := os.Stat(filepath.Join(root, src)); err != nil {
						t.Errorf("line %d: COPY %s: %v", in.Line, src, err)
					}
				}
			}
		}
		for _, need := range []string{"go.mod", "go.sum", "cmd", "internal", "schemas"} {
			for _, p := range ignore {
				if ignored(p, need) {
					t.Errorf("Dockerfile.dockerignore pattern %q excludes %s, which the build needs", p, need)
				}
			}
		}
	})
}

// dockerignore reads the Dockerfile's own ignore file (BuildKit: <Dockerfile>.dockerignore).
func dockerignore(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatalf("read Dockerfile.dockerignore: %v", err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "!") {
			out = append(out, l)
		}
	}
	return out
}

// ignored reports whether pattern excludes the top-level path (or everything under it).
func ignored(pattern, path string) bool {
	pattern = strings.TrimPrefix(strings.TrimSuffix(pattern, "/"), "/")
	if strings.HasPrefix(pattern, "**/") {
		m, _ := filepath.Match(strings.TrimPrefix(pattern, "**/"), path)
		return m
	}
	first, _, _ := strings.Cut(pattern, "/")
	if first != pattern && first != "**" {
		m, _ := filepath.Match(first, path)
		return m && strings.HasSuffix(pattern, "/**")
	}
	m, _ := filepath.Match(pattern, path)
	return m || pattern == "*" || pattern == "**"
}
