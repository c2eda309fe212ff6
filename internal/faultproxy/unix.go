package faultproxy

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
)

// UnixProxy forwards connections from a unix socket of its own to an
// upstream unix socket, such as a Docker engine's, and can be made to
// accept connections but never answer them (Stall), as an engine that
// hangs does: a client sees neither a refusal nor an error, only its own
// timeouts. All methods are safe for concurrent use.
type UnixProxy struct {
	ln       net.Listener
	dir      string
	upstream string

	mu      sync.Mutex
	stalled bool
	conns   map[net.Conn]struct{} // every open client and upstream connection
	closed  bool
	wg      sync.WaitGroup
}

// StartUnix listens on a new socket in a private temporary directory (the
// path stays short: sockets paths are limited to about 100 bytes) and
// forwards each connection to the socket at upstream, e.g.
// "/var/run/docker.sock".
func StartUnix(upstream string) (*UnixProxy, error) {
	dir, err := os.MkdirTemp("", "fp")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "s.sock"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &UnixProxy{ln: ln, dir: dir, upstream: upstream, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Path is the socket clients connect to.
func (p *UnixProxy) Path() string { return p.ln.Addr().String() }

// DockerHost is Path as a Docker host ("unix:///…"), for DOCKER_HOST or
// the agent's docker_host setting.
func (p *UnixProxy) DockerHost() string { return "unix://" + p.Path() }

// Stall closes every open connection (an in-flight request or event
// stream breaks, as when the engine restarts) and, until Heal, accepts new
// connections without reading from them or answering: every request hangs
// until the client gives up.
func (p *UnixProxy) Stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
	p.closeAll()
}

// Heal closes the connections held during the stall, whose clients have
// given up by now, and forwards new connections again.
func (p *UnixProxy) Heal() {
	p.mu.Lock()
	wasStalled := p.stalled
	p.stalled = false
	p.mu.Unlock()
	if wasStalled {
		p.closeAll()
	}
}

// Close stops listening, closes every connection and removes the socket.
func (p *UnixProxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.closeAll()
	p.wg.Wait()
	return errors.Join(err, os.RemoveAll(p.dir))
}

func (p *UnixProxy) closeAll() {
	p.mu.Lock()
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// track registers c; false when the proxy is closing and c was closed.
func (p *UnixProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *UnixProxy) untrack(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *UnixProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !p.track(c) {
			continue
		}
		p.mu.Lock()
		stalled := p.stalled
		p.mu.Unlock()
		p.wg.Add(1)
		if stalled {
			go p.hold(c)
		} else {
			go p.pipe(c)
		}
	}
}

// hold keeps c open without a byte either way until it is closed (by Heal,
// Close or the client).
func (p *UnixProxy) hold(c net.Conn) {
	defer p.wg.Done()
	defer p.untrack(c)
	// The request is read and dropped, so that the client's writes succeed
	// as they do against a hung engine; only the answer never comes.
	_, _ = io.Copy(io.Discard, c)
}

// pipe forwards c to the upstream socket until either side closes.
func (p *UnixProxy) pipe(c net.Conn) {
	defer p.wg.Done()
	defer p.untrack(c)
	up, err := net.Dial("unix", p.upstream)
	if err != nil {
		return
	}
	if !p.track(up) {
		return
	}
	defer p.untrack(up)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	// The first side to end ends both: a half-closed stream is not a fault
	// these tests need.
	<-done
}
