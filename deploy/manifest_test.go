package deploy_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// This file reads the two manifests and the binaries' --help; deploy_test.go holds the checks.

// repoRoot is the build context of the Dockerfile: tests run in deploy/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// loadCompose reads docker-compose.yml with compose-go, the loader `docker compose` itself uses:
// it validates the file against the Compose specification (a misspelt key, a wrong type or an
// unknown top-level key is an error, as it would be for docker compose), resolves anchors and
// merge keys, interpolates with an empty environment, and normalises every short form (ports,
// volumes, depends_on, commands) into its model, on which the checks below run.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	project, err := loadComposeFile(filepath.Join(dir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	return project
}

// loadComposeFile loads the compose file at path (absolute) as docker compose would.
func loadComposeFile(path string) (*types.Project, error) {
	ctx := context.Background()
	details, err := loader.LoadConfigFiles(ctx, []string{path}, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	// An empty environment, so that the outcome does not depend on the shell running the test.
	details.Environment = types.Mapping{}
	project, err := loader.LoadWithContext(ctx, *details, func(o *loader.Options) {
		o.SetProjectName("ordersys", false)
		o.ResolvePaths = true // as docker compose does: build contexts become absolute
	})
	if err != nil {
		return nil, fmt.Errorf("load %s as docker compose would: %w", path, err)
	}
	return project, nil
}

// envOf is a service's environment; a variable listed without a value (taken from the host
// when compose runs) is "".
func envOf(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		out[k] = ""
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// buildArg is a build argument of a service built from a Dockerfile, "" if unset.
func buildArg(s types.ServiceConfig, name string) string {
	if s.Build == nil || s.Build.Args[name] == nil {
		return ""
	}
	return *s.Build.Args[name]
}

// A published port: host address, host port and container port.
type port struct {
	IP              string
	Host, Container int
	Protocol        string
	Published       string // as the file gives it, for messages
}

func publishedPort(p types.ServicePortConfig) (port, error) {
	out := port{IP: p.HostIP, Container: int(p.Target), Protocol: p.Protocol,
		Published: fmt.Sprintf("%s:%s:%d/%s", p.HostIP, p.Published, p.Target, p.Protocol)}
	host, err := strconv.Atoi(p.Published)
	if err != nil {
		return out, fmt.Errorf("port %s: the host side must be one port number", out.Published)
	}
	out.Host = host
	return out, nil
}

// portOf returns the port of a host:port address.
func portOf(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}

// flagInfo is one flag as --help prints it (the flag package's PrintDefaults format).
type flagInfo struct {
	Name  string
	Type  string // "" for a boolean flag; string, int, duration, float, value (custom)
	Usage string
	Env   string // the environment variable that sets it, if any
	Def   string // default as printed, unquoted
}

// binaryFlags is what one binary (or one ordersctl subcommand) accepts.
type binaryFlags struct {
	Flags map[string]flagInfo
	// Envs lists every environment variable the help mentions ("(env NAME)" on a flag, or
	// "env NAME" in prose, as for a password read only from the environment); the value is
	// the flag it sets, "" when none.
	Envs map[string]string
}

var (
	flagLine   = regexp.MustCompile(`^  -([A-Za-z0-9][A-Za-z0-9_.-]*)(?: (\w+))?$`)
	envMention = regexp.MustCompile(`\benv ([A-Z][A-Z0-9_]*)\b`)
	flagEnv    = regexp.MustCompile(`\(env ([A-Z][A-Z0-9_]*)\)`)
	flagDef    = regexp.MustCompile(`\(default (?:"([^"]*)"|([^)]*))\)\s*$`)
)

// parseHelp reads PrintDefaults output: "  -name type" lines, each followed by indented usage.
func parseHelp(out string) binaryFlags {
	bf := binaryFlags{Flags: map[string]flagInfo{}, Envs: map[string]string{}}
	var cur *flagInfo
	flush := func() {
		if cur == nil {
			return
		}
		if m := flagEnv.FindStringSubmatch(cur.Usage); m != nil {
			cur.Env = m[1]
			bf.Envs[m[1]] = cur.Name
		}
		if m := flagDef.FindStringSubmatch(cur.Usage); m != nil {
			cur.Def = m[1] + m[2]
		}
		bf.Flags[cur.Name] = *cur
		cur = nil
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := flagLine.FindStringSubmatch(line); m != nil {
			flush()
			cur = &flagInfo{Name: m[1], Type: m[2]}
			continue
		}
		if cur != nil && strings.HasPrefix(line, "    ") {
			cur.Usage = strings.TrimSpace(cur.Usage + " " + strings.TrimSpace(line))
			continue
		}
		flush()
	}
	flush()
	for _, m := range envMention.FindAllStringSubmatch(out, -1) {
		if _, ok := bf.Envs[m[1]]; !ok {
			bf.Envs[m[1]] = ""
		}
	}
	return bf
}

// helpOf builds cmd/<binary> and parses its --help (for ordersctl, of the subcommand), run
// with an environment free of configuration so that the printed defaults are the binary's.
func helpOf(t *testing.T, binary, subcommand string) binaryFlags {
	t.Helper()
	bin := kafkatest.BuildBinary(t, "./cmd/"+binary)
	var args []string
	if subcommand != "" {
		args = append(args, subcommand)
	}
	args = append(args, "--help")
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", binary, strings.Join(args, " "), err, out)
	}
	bf := parseHelp(string(out))
	if len(bf.Flags) == 0 {
		t.Fatalf("%s %s printed no flags:\n%s", binary, strings.Join(args, " "), out)
	}
	return bf
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, ...
	Args string
	Line int
}

// stage is one FROM and the instructions up to the next.
type stage struct {
	Base, Name string
	Args       map[string]string // ARG name → default
	Env        map[string]string
	Body       []instruction
}

type dockerfile struct {
	GlobalArgs map[string]string
	Stages     []*stage
}

func (d dockerfile) stage(name string) *stage {
	for _, s := range d.Stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func loadDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var ins []instruction
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(raw)
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(line, "#") {
			continue // comments inside a continued instruction are dropped by Docker too
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		ins = append(ins, instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start})
		cur.Reset()
	}
	d := dockerfile{GlobalArgs: map[string]string{}}
	var st *stage
	for _, in := range ins {
		switch in.Cmd {
		case "FROM":
			f := strings.Fields(in.Args)
			st = &stage{Base: f[0], Args: map[string]string{}, Env: map[string]string{}}
			for i := 1; i < len(f); i++ {
				if strings.EqualFold(f[i], "AS") && i+1 < len(f) {
					st.Name = f[i+1]
				}
			}
			d.Stages = append(d.Stages, st)
			continue
		case "ARG":
			name, def, _ := strings.Cut(in.Args, "=")
			if st == nil {
				d.GlobalArgs[name] = def
			} else {
				st.Args[name] = def
			}
		case "ENV":
			for _, kv := range strings.Fields(in.Args) {
				if k, v, ok := strings.Cut(kv, "="); ok {
					st.Env[k] = strings.Trim(v, `"`)
				}
			}
		}
		if st != nil {
			st.Body = append(st.Body, in)
		}
	}
	if len(d.Stages) == 0 {
		t.Fatal("Dockerfile has no FROM")
	}
	return d
}

// shellWords splits a command line, honouring double and single quotes.
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	var quote rune
	inWord := false
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// mainPackages lists the directories under cmd/ that hold a main.go.
func mainPackages(t *testing.T) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(repoRoot(t), "cmd", "*", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range matches {
		out = append(out, filepath.Base(filepath.Dir(m)))
	}
	sort.Strings(out)
	return out
}

func cmdExists(t *testing.T, binary string) bool {
	_, err := os.Stat(filepath.Join(repoRoot(t), "cmd", binary, "main.go"))
	return err == nil
}
