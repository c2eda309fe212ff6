package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// serverProc is a running `tentacle-server serve` and what its log told.
type serverProc struct {
	cmd      *exec.Cmd
	done     chan struct{}
	addr     string // gRPC
	httpAddr string // /metrics
	token    string // bootstrap admin token (first start only)
	logPath  string
}

// startServer runs tentacle-server on dataDir and waits until it serves.
// listen and httpListen may be 127.0.0.1:0 (first start) or the addresses
// of an earlier process (restart).
func startServer(ctx context.Context, b *bench, dataDir, listen, httpListen string, extra ...string) (*serverProc, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dataDir, "..", filepath.Base(dataDir)+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--data-dir", dataDir, "--listen", listen, "--http-listen", httpListen, "--log-format", "json"}, extra...)
	if os.Getenv("TENTACLE_BENCH_PPROF") != "" {
		// For profiling the server under the bench's load:
		// go tool pprof http://HTTPADDR/debug/pprof/profile (logged below).
		args = append(args, "--debug-pprof")
	}
	cmd := exec.Command(b.bin("tentacle-server"), args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	p := &serverProc{cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() { cmd.Wait(); pw.Close(); close(p.done) }()
	ready := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	go func() {
		defer logFile.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			mu.Lock()
			if tok, ok := strings.CutPrefix(strings.TrimSpace(line), "tntadm_"); ok {
				p.token = "tntadm_" + tok
			}
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				switch m["msg"] {
				case "serving":
					p.addr, _ = m["addr"].(string)
				case "serving metrics and probes over plain HTTP":
					p.httpAddr, _ = m["addr"].(string)
				}
			}
			if p.addr != "" && p.httpAddr != "" {
				once.Do(func() { close(ready) })
			}
			mu.Unlock()
		}
	}()
	select {
	case <-ready:
	case <-p.done:
		return nil, fmt.Errorf("tentacle-server exited before serving (log: %s)", logPath)
	case <-time.After(60 * time.Second):
		p.kill()
		return nil, fmt.Errorf("tentacle-server not serving after 60 s (log: %s)", logPath)
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
	// The bootstrap token is printed before serving begins; give the log
	// reader a moment in case it comes on a later line.
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	if os.Getenv("TENTACLE_BENCH_PPROF") != "" {
		b.logf("server pid %d, profiler at http://%s/debug/pprof/", p.pid(), p.httpAddr)
	}
	defer mu.Unlock()
	return p, nil
}

func (p *serverProc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM (as an operator's restart does) and waits for the
// exit; SIGKILL after a minute.
func (p *serverProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		p.kill()
	}
}

func (p *serverProc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// sessions reads the server's tentacle_server_sessions gauge.
func (p *serverProc) sessions(ctx context.Context) (int, error) {
	v, err := scrapeMetric(ctx, "http://"+p.httpAddr+"/metrics", "tentacle_server_sessions")
	return int(v), err
}

// scrapeMetric reads one unlabelled sample from a Prometheus text page.
func scrapeMetric(ctx context.Context, url, name string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	v, ok := metricValue(body, name)
	if !ok {
		return 0, fmt.Errorf("metric %s: not found", name)
	}
	return v, nil
}

// bearer sends the admin token with every call, as tentaclectl does.
type bearer string

func (t bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// dialAdmin is an admin API client as tentaclectl makes one: TLS with the
// server's CA, the token as a bearer credential.
func dialAdmin(addr, caFile, token string) (*grpc.ClientConn, tentaclev1.AdminServiceClient, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, errors.New(caFile + ": no PEM certificate")
	}
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool})),
		grpc.WithPerRPCCredentials(bearer(token)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		return nil, nil, err
	}
	return cc, tentaclev1.NewAdminServiceClient(cc), nil
}
