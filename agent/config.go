// Package agent is the Tentacle agent: it enrolls with a server, keeps a
// session to it (Hello, heartbeats, reconnects with jittered backoff),
// journals the tasks it receives, runs them through the Docker seam and
// reports events and logs back.
//
// It must not import server packages: what it shares with the server lives
// in proto/ and internal/.
package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/tentacle-deploy/tentacle/agent/creds"
	"github.com/tentacle-deploy/tentacle/internal/logging"
)

// Config is the agent's configuration file (YAML).
type Config struct {
	// Server overrides the address recorded at enrollment.
	Server string `yaml:"server"`
	// DataDir holds the key, certificates, enrollment and journal.
	DataDir string `yaml:"data_dir"`
	// Registries are the agent's own registry credentials; the server never
	// sends any.
	Registries []creds.Entry `yaml:"registries"`
	// DockerConfig is a docker config.json consulted after Registries.
	DockerConfig string `yaml:"docker_config"`
	// DockerHost overrides DOCKER_HOST.
	DockerHost string `yaml:"docker_host"`
	// ContainerPrefix goes before the name of every container the agent
	// creates, so that several agents can share one Docker engine.
	ContainerPrefix string `yaml:"container_prefix"`
	// LogSpoolCap bounds each task's log bytes the server has not
	// acknowledged: "64MiB" (the default when empty), or bytes with an
	// optional KiB, MiB or GiB suffix. See SpoolCap.
	LogSpoolCap string `yaml:"log_spool_cap"`
	// MetricsAddr is the HOST:PORT of the agent's plain-HTTP /metrics;
	// empty (the default) serves none.
	MetricsAddr string          `yaml:"metrics_addr"`
	Log         logging.Options `yaml:"log"`
}

// DefaultLogSpoolCap is log_spool_cap's default.
const DefaultLogSpoolCap = 64 << 20

// minLogSpoolCap leaves room above the bytes that may be in flight to the
// server (journal.LogInFlight), which the cap never drops.
const minLogSpoolCap = 4 << 20

// SpoolCap is LogSpoolCap in bytes, DefaultLogSpoolCap when it is empty or
// invalid (ParseConfig and ApplyEnv reject an invalid one).
func (c Config) SpoolCap() uint64 {
	n, msg := parseSpoolCap(c.LogSpoolCap)
	if msg != "" || n == 0 {
		return DefaultLogSpoolCap
	}
	return n
}

// DefaultConfigPath is where install and run look without --config.
func DefaultConfigPath() string {
	if runtime.GOOS == "windows" {
		return filepath.Join(programData(), "Tentacle", "agent.yaml")
	}
	return "/etc/tentacle/agent.yaml"
}

// legacyConfigName is the default config file's name before agent.yaml.
const legacyConfigName = "tentacle.yaml"

// DefaultDataDir is used when neither the config nor the environment names
// one.
func DefaultDataDir() string {
	if runtime.GOOS == "windows" {
		return filepath.Join(programData(), "Tentacle", "data")
	}
	return "/var/lib/tentacle"
}

func programData() string {
	if p := os.Getenv("ProgramData"); p != "" {
		return p
	}
	return `C:\ProgramData`
}

// LoadConfig reads the config file, then applies the TENTACLE_* environment
// overrides (see ApplyEnv). A missing file is an error unless optional is
// set, in which case the defaults are used. A relative data_dir is relative
// to the config file's directory.
func LoadConfig(path string, optional bool) (Config, error) {
	return loadConfig(path, optional, os.LookupEnv)
}

func loadConfig(path string, optional bool, lookup func(string) (string, bool)) (Config, error) {
	var cfg Config
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && optional:
		// An upgraded host whose file still has the old default name must
		// not silently lose its registries and server override.
		if filepath.Base(path) == "agent.yaml" {
			legacy := filepath.Join(filepath.Dir(path), legacyConfigName)
			if _, err := os.Stat(legacy); err == nil {
				return Config{}, fmt.Errorf("config %s does not exist but %s does: the default config file is now named agent.yaml: rename it, or pass --config %s", path, legacy, legacy)
			}
		}
	case err != nil:
		return Config{}, fmt.Errorf("config: %w", err)
	default:
		if cfg, err = ParseConfig(data); err != nil {
			return Config{}, prefixEach(err, "config "+path+": ")
		}
		if cfg.DataDir != "" && !filepath.IsAbs(cfg.DataDir) {
			cfg.DataDir = filepath.Join(filepath.Dir(path), cfg.DataDir)
		}
	}
	if cfg, err = ApplyEnv(cfg, lookup); err != nil {
		return Config{}, err
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir()
	}
	return cfg, nil
}

// prefixEach puts prefix before each of the errors joined in err, so every
// line of the message names the file.
func prefixEach(err error, prefix string) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = fmt.Errorf("%s%w", prefix, e)
	}
	return errors.Join(out...)
}

// ParseConfig parses and validates a config. Every error starts with the
// line it is about ("line 7: registries[1].password_file: …"); several are
// joined, one per line, in line order. Unknown and repeated keys are
// errors, so a typo does not silently drop a setting. A relative data_dir is
// accepted: LoadConfig resolves it against the file's directory.
func ParseConfig(data []byte) (Config, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		// An empty file decodes to io.EOF: it is a valid config of defaults.
		if errors.Is(err, io.EOF) {
			return Config{}, nil
		}
		return Config{}, syntaxError(err, data)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return Config{}, &lineError{line: extra.Line, msg: `a second YAML document ("---"): the config is one document`}
	} else if !errors.Is(err, io.EOF) {
		return Config{}, syntaxError(err, data)
	}
	p := &parser{lines: map[string]int{}}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	p.walk(root, reflect.TypeFor[Config](), "")
	var cfg Config
	if err := doc.Decode(&cfg); err != nil {
		if len(p.errs) > 0 {
			return Config{}, p.err() // the same problems, with better words
		}
		// walk has checked the shape, so this is a value yaml itself refuses
		// (an invalid !!binary, say).
		return Config{}, decodeError(err, root.Line)
	}
	// After an unknown or repeated key the values can still be checked;
	// after a wrong shape the decoded values need not match the file.
	if !p.badShape {
		for _, pr := range problems(cfg) {
			p.errorf(p.line(pr.field), pr.field, "%s", pr.msg)
		}
	}
	if err := p.err(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// lineError is one problem in the config file.
type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// parser walks the YAML tree against Config's type: it rejects unknown and
// repeated keys and values of the wrong shape, and records the line of
// every field so later checks can point at it.
type parser struct {
	lines    map[string]int // "server", "registries[1]", "registries[1].password_file"
	errs     []*lineError
	badShape bool // a value of the wrong kind, or an empty list item
}

func (p *parser) shapeErrorf(line int, field, format string, args ...any) {
	p.badShape = true
	p.errorf(line, field, format, args...)
}

func (p *parser) errorf(line int, field, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	p.errs = append(p.errs, &lineError{line: line, msg: msg})
}

// err joins the errors in line order.
func (p *parser) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b *lineError) int { return a.line - b.line })
	errs := make([]error, len(p.errs))
	for i, e := range p.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// line is the line of field or, when it is absent from the file, of the
// closest enclosing field that is present ("registries[1]" for a missing
// "registries[1].password").
func (p *parser) line(field string) int {
	for field != "" {
		if l, ok := p.lines[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return 1
}

// resolve follows an alias ("*name") to its anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func (p *parser) walk(n *yaml.Node, t reflect.Type, path string) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // the zero value
	}
	switch t.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			p.shapeErrorf(n.Line, path, "want a string, got %s", shape(n))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			p.shapeErrorf(n.Line, path, "want a list, got %s", shape(n))
			return
		}
		for i, item := range n.Content {
			field := fmt.Sprintf("%s[%d]", path, i)
			p.lines[field] = item.Line
			if r := resolve(item); r.Kind == yaml.ScalarNode && r.ShortTag() == "!!null" {
				// yaml would drop it, and the entries after it would no
				// longer match their lines.
				p.shapeErrorf(item.Line, field, "is empty: fill it in or remove the \"-\"")
				continue
			}
			p.walk(item, t.Elem(), field)
		}
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if path == "" {
				p.shapeErrorf(n.Line, path, "the config must be a mapping of keys (server:, data_dir:, …), got %s", shape(n))
			} else {
				p.shapeErrorf(n.Line, path, "want a mapping of keys, got %s", shape(n))
			}
			return
		}
		fields := map[string]reflect.Type{}
		for f := range t.Fields() {
			if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := resolve(n.Content[i]), n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				p.shapeErrorf(k.Line, path, "a key must be a name, got %s", shape(k))
				continue
			}
			if k.ShortTag() == "!!merge" {
				p.shapeErrorf(k.Line, path, "merge keys (<<) are not supported: write the keys out")
				continue
			}
			field := k.Value
			if path != "" {
				field = path + "." + k.Value
			}
			ft, ok := fields[k.Value]
			if !ok {
				p.errs = append(p.errs, &lineError{line: k.Line, msg: fmt.Sprintf("unknown key %q", field)})
				continue
			}
			if first, dup := seen[k.Value]; dup {
				p.errorf(k.Line, field, "set twice (first on line %d): keep one", first)
				continue
			}
			seen[k.Value] = k.Line
			p.lines[field] = k.Line
			p.walk(v, ft, field)
		}
	}
}

func shape(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		if len(n.Value) > 40 {
			return "a value"
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

var yamlLine = regexp.MustCompile(`^line (\d+): `)

// syntaxError turns yaml's "yaml: line 3: …" into "line 3: …". yaml gives
// no line for an error on the first line nor for bytes it cannot read
// (invalid UTF-8, control characters): those are found here.
func syntaxError(err error, data []byte) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
		if parserProblem(msg) {
			// yaml counts the lines of its parser's (not its scanner's)
			// errors from 0.
			line++
		}
		// At the end of the input yaml may count a line past the last.
		last := bytes.Count(data, []byte("\n")) + 1
		if bytes.HasSuffix(data, []byte("\n")) {
			last--
		}
		return &lineError{line: max(1, min(line, last)), msg: msg}
	}
	line := 1
	if strings.Contains(msg, "UTF-8") || strings.Contains(msg, "control characters") || strings.Contains(msg, "Unicode") {
		line = badCharLine(data)
	}
	return &lineError{line: line, msg: msg}
}

// parserProblem tells the messages of yaml's parser from its scanner's.
func parserProblem(msg string) bool {
	switch msg {
	case "did not find expected ',' or ']'", "did not find expected ',' or '}'",
		"did not find expected '-' indicator", "did not find expected <document start>",
		"did not find expected <stream-start>", "did not find expected key",
		"did not find expected node content", "found duplicate %TAG directive",
		"found duplicate %YAML directive", "found incompatible YAML document",
		"found undefined tag handle":
		return true
	}
	return false
}

// badCharLine is the line of the first byte yaml cannot read.
func badCharLine(data []byte) int {
	line := 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		if r == utf8.RuneError && size <= 1 {
			return line
		}
		switch {
		case r == '\n':
			line++
		case r == '\t' || r == '\r' || r == 0x85 || r == 0xFEFF:
		case r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) || r == 0xFFFE || r == 0xFFFF:
			return line
		}
		data = data[size:]
	}
	return line
}

// decodeError turns a yaml.TypeError ("yaml: unmarshal errors:\n  line 2:
// …") into line errors.
func decodeError(err error, line int) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return &lineError{line: line, msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	errs := make([]error, 0, len(te.Errors))
	for _, msg := range te.Errors {
		l := line
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			l, _ = strconv.Atoi(m[1])
			msg = msg[len(m[0]):]
		}
		errs = append(errs, &lineError{line: l, msg: msg})
	}
	return errors.Join(errs...)
}

// problem is a value a config must not have.
type problem struct {
	field string // "server", "registries[1].password_file"
	msg   string
}

var credsField = regexp.MustCompile(`^(registries\[\d+\]\.[a-z_]+): `)

// problems validates the values of cfg, wherever they came from.
func problems(cfg Config) []problem {
	var out []problem
	if msg := checkServer(cfg.Server); msg != "" {
		out = append(out, problem{"server", msg})
	}
	if msg := checkDockerHost(cfg.DockerHost); msg != "" {
		out = append(out, problem{"docker_host", msg})
	}
	if msg := checkContainerPrefix(cfg.ContainerPrefix); msg != "" {
		out = append(out, problem{"container_prefix", msg})
	}
	if msg := checkLogSpoolCap(cfg.LogSpoolCap); msg != "" {
		out = append(out, problem{"log_spool_cap", msg})
	}
	if msg := CheckMetricsAddr(cfg.MetricsAddr); msg != "" {
		out = append(out, problem{"metrics_addr", msg})
	}
	if msg := checkLogFormat(cfg.Log.Format); msg != "" {
		out = append(out, problem{"log.format", msg})
	}
	if msg := checkLogLevel(cfg.Log.Level); msg != "" {
		out = append(out, problem{"log.level", msg})
	}
	if _, err := creds.New(cfg.Registries, ""); err != nil {
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, e := range errs {
			// creds says "registries[1].password_file: …": keep its words
			// and find the line of the field it names.
			msg := e.Error()
			if m := credsField.FindStringSubmatch(msg); m != nil {
				out = append(out, problem{m[1], msg[len(m[0]):]})
			} else {
				out = append(out, problem{"registries", msg})
			}
		}
	}
	return out
}

// The check functions return "" for a valid (or empty, meaning default)
// value, else what is wrong with it, without the field's name.

func checkServer(s string) string { return checkHostPort(s, false) }

// checkHostPort checks a HOST:PORT; anyHost allows :PORT (every interface).
func checkHostPort(s string, anyHost bool) string {
	if s == "" {
		return ""
	}
	form := "HOST:PORT"
	if anyHost {
		form = "HOST:PORT or :PORT"
	}
	if strings.Contains(s, "://") {
		return fmt.Sprintf("%q must be %s, without a scheme", s, form)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || (host == "" && !anyHost) || strings.ContainsAny(host, " \t\r\n/@") {
		return fmt.Sprintf("%q must be %s", s, form)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("%q must be %s with a port from 1 to 65535", s, form)
	}
	return ""
}

func checkDockerHost(s string) string {
	if s == "" {
		return ""
	}
	scheme, addr, ok := strings.Cut(s, "://")
	switch {
	case !ok || (scheme != "unix" && scheme != "npipe" && scheme != "tcp"):
		return fmt.Sprintf("%q: use unix://PATH, npipe:////./pipe/NAME or tcp://HOST:PORT", s)
	case addr == "":
		return fmt.Sprintf("%q has no address after %s://", s, scheme)
	}
	return ""
}

// containerPrefixRE is the start of a Docker container name; the longest
// application name and ".previous" still fit Docker's limits after it.
var containerPrefixRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)

func checkContainerPrefix(s string) string {
	if s == "" || containerPrefixRE.MatchString(s) {
		return ""
	}
	return fmt.Sprintf("%q: use up to 64 letters, digits, '_', '.' or '-', starting with a letter or digit, e.g. agent1-", s)
}

var spoolCapRE = regexp.MustCompile(`^([0-9]{1,10}) ?(|B|KiB|MiB|GiB)$`)

// parseSpoolCap reads "67108864", "64MiB" or "64 MiB"; 0 for "".
func parseSpoolCap(s string) (uint64, string) {
	if s == "" {
		return 0, ""
	}
	m := spoolCapRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Sprintf("%q: give a number of bytes with an optional KiB, MiB or GiB suffix, e.g. 64MiB", s)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	n <<= map[string]uint{"": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30}[m[2]]
	if n < minLogSpoolCap {
		return 0, fmt.Sprintf("%q is below the least cap, 4MiB: the agent keeps up to 1 MiB of a task's log in flight to the server", s)
	}
	return n, ""
}

func checkLogSpoolCap(s string) string { _, msg := parseSpoolCap(s); return msg }

// checkLogFormat and checkLogLevel ask logging itself, so the config accepts
// exactly what the flags do; its messages name the flag, which is cut.
func checkLogFormat(s string) string {
	if _, err := logging.New(logging.Options{Format: s}, io.Discard); err != nil {
		return strings.TrimPrefix(err.Error(), "--log-format: ")
	}
	return ""
}

func checkLogLevel(s string) string {
	if _, err := logging.New(logging.Options{Level: s}, io.Discard); err != nil {
		return strings.TrimPrefix(err.Error(), "--log-level: ")
	}
	return ""
}
