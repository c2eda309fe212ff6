// Package faultproxy is a TCP proxy on 127.0.0.1 that fault-injection
// tests put between agents and the server, to break the link the way
// networks break it: Cut resets every connection and refuses new ones (a
// server or host gone), Stall holds connections open and forwards nothing
// (a silent partition that only keepalives and heartbeats detect), and
// Heal restores the link.
//
// It is test support: it listens on loopback only and must not be linked
// into the agent or server binaries.
package faultproxy

import (
	"errors"
	"net"
	"sync"
)

// Proxy forwards connections from its own loopback address to an
// upstream address. All methods are safe for concurrent use.
type Proxy struct {
	ln net.Listener

	mu       sync.Mutex
	upstream string
	cut      bool
	stall    chan struct{} // non-nil while stalled; closed by Heal
	links    map[*link]struct{}
	closed   bool
	stats    Stats
	wg       sync.WaitGroup
	closeErr error
}

// Stats counts the connections the proxy has seen.
type Stats struct {
	// Accepted counts connections forwarded (or held, while stalled).
	Accepted int
	// Refused counts connections reset at once because the link was cut
	// or the upstream could not be dialled.
	Refused int
	// Active is the number of connections open now.
	Active int
}

// link is one client connection and its upstream connection.
type link struct {
	client, upstream net.Conn
	done             chan struct{}
	once             sync.Once
}

func (l *link) close() {
	l.once.Do(func() {
		close(l.done)
		resetClose(l.client)
		if l.upstream != nil {
			resetClose(l.upstream)
		}
	})
}

// resetClose closes c with an RST where it can, as a dead peer's
// kernel or a firewall would, rather than an orderly FIN.
func resetClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// Start listens on 127.0.0.1 (a free port) and forwards to upstream.
func Start(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, upstream: upstream, links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the "127.0.0.1:PORT" clients dial instead of the upstream.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetUpstream changes where new connections are forwarded (a restarted
// server on another port); open connections are left alone.
func (p *Proxy) SetUpstream(addr string) {
	p.mu.Lock()
	p.upstream = addr
	p.mu.Unlock()
}

// Cut resets every open connection and resets new ones as they arrive,
// until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	p.releaseStallLocked()
	links := p.takeLinksLocked()
	p.mu.Unlock()
	for _, l := range links {
		l.close()
	}
}

// Stall stops forwarding bytes in both directions, on open connections
// and on connections accepted from now on, without closing anything:
// neither side sees an error until its own timeouts fire. Bytes read
// meanwhile are delivered after Heal, as TCP would retransmit them.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stall == nil {
		p.stall = make(chan struct{})
	}
}

// Heal ends a Cut or a Stall: held bytes flow again and new connections
// are forwarded.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	p.releaseStallLocked()
}

func (p *Proxy) releaseStallLocked() {
	if p.stall != nil {
		close(p.stall)
		p.stall = nil
	}
}

func (p *Proxy) takeLinksLocked() []*link {
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
		delete(p.links, l)
	}
	p.stats.Active = 0
	return links
}

// Stats returns the connection counts so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Close stops listening and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return p.closeErr
	}
	p.closed = true
	p.releaseStallLocked()
	links := p.takeLinksLocked()
	p.closeErr = p.ln.Close()
	p.mu.Unlock()
	for _, l := range links {
		l.close()
	}
	p.wg.Wait()
	return p.closeErr
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		if p.closed || p.cut {
			p.stats.Refused++
			p.mu.Unlock()
			resetClose(c)
			continue
		}
		l := &link{client: c, done: make(chan struct{})}
		p.links[l] = struct{}{}
		p.stats.Accepted++
		p.stats.Active = len(p.links)
		p.wg.Add(1)
		p.mu.Unlock()
		go p.forward(l)
	}
}

// forward dials the upstream (once any stall is over) and copies both
// ways until either side closes or the link is cut.
func (p *Proxy) forward(l *link) {
	defer p.wg.Done()
	defer p.drop(l)
	if !p.wait(l) {
		return
	}
	p.mu.Lock()
	upstream := p.upstream
	p.mu.Unlock()
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		p.mu.Lock()
		p.stats.Refused++
		p.mu.Unlock()
		return
	}
	p.mu.Lock()
	_, open := p.links[l]
	if open {
		l.upstream = up
	}
	p.mu.Unlock()
	if !open { // cut while dialling
		resetClose(up)
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.copy(l, up, l.client) }()
	go func() { defer wg.Done(); p.copy(l, l.client, up) }()
	wg.Wait()
}

// copy moves bytes from src to dst, holding each read while stalled. The
// first side to end ends the link: a half-closed TCP stream is not a
// fault these tests need.
func (p *Proxy) copy(l *link, dst, src net.Conn) {
	defer l.close()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if !p.wait(l) {
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // io.EOF or a reset: either way the link ends
			return
		}
	}
}

// wait blocks while the proxy is stalled; false means the link was closed.
func (p *Proxy) wait(l *link) bool {
	for {
		p.mu.Lock()
		stall := p.stall
		p.mu.Unlock()
		if stall == nil {
			select {
			case <-l.done:
				return false
			default:
				return true
			}
		}
		select {
		case <-stall:
		case <-l.done:
			return false
		}
	}
}

func (p *Proxy) drop(l *link) {
	l.close()
	p.mu.Lock()
	delete(p.links, l)
	p.stats.Active = len(p.links)
	p.mu.Unlock()
}
