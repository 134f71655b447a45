// Command netproxy is the network model of dscache's benchmarks (bench/bench_network.py): a TCP
// proxy on 127.0.0.1 in front of the test servers that caps every connection's download rate,
// holds back the first byte of every response until a latency has passed since its request, and
// caps the sum of all connections' download rates.
//
//	netproxy -upstream 127.0.0.1:8000 [-upstream ...] [-conn-rate B/s] [-latency D] [-aggregate-rate B/s]
//
// One listener per upstream, on 127.0.0.1 with a free port. On start it prints one line
// "listen <upstream> <address>" per upstream, "admin <address>", then "ready". The admin address
// answers GET /stats (JSON counters since the last reset) and POST /reset. Besides connections,
// requests and bytes it counts streams, connections that sent response bytes in the last 100 ms
// (sampled every 10 ms): peak_streams, the most at once, and mean_streams, their byte-weighted mean.
//
// The model works on bytes, not on HTTP: a request is the client sending bytes after the last
// response byte, and its response's first byte is released no earlier than `latency` after the
// request's first byte (so a client that pipelines requests is not modelled). Rates apply to the
// direction upstream -> client (downloads); uploads pass unpaced. Pacing is by reservation on a
// virtual clock: every chunk of at most `rate x 10 ms` bytes takes its share of the connection's and
// of the aggregate budget, so unused time is never saved up into a burst.
//
// Written in Go rather than Python because the model must not be the limit it models: on the 2-core
// benchmark machine, with its caps off, this proxy relayed 0.8-1.1 GB/s to 1-16 curl streams where
// an asyncio proxy with 1 MiB reads relayed 0.6-0.7 GB/s (bench/netmodel.py has the measurement).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type upstreams []string

func (u *upstreams) String() string     { return strings.Join(*u, ",") }
func (u *upstreams) Set(v string) error { *u = append(*u, v); return nil }

// counters are the admin endpoint's statistics; all fields are updated atomically.
type counters struct {
	connections atomic.Int64 // accepted since the last reset
	active      atomic.Int64 // open now
	peak        atomic.Int64 // most open at once since the last reset
	streams     atomic.Int64 // most connections moving response bytes at once since the last reset
	weighted    atomic.Int64 // sum over samples of (busy connections x bytes sent in the sample)
	sampled     atomic.Int64 // sum over samples of the bytes sent in the sample
	requests    atomic.Int64 // responses that started since the last reset
	bytesDown   atomic.Int64 // upstream -> client
	bytesUp     atomic.Int64 // client -> upstream
}

func (c *counters) open() {
	c.connections.Add(1)
	now := c.active.Add(1)
	for {
		p := c.peak.Load()
		if now <= p || c.peak.CompareAndSwap(p, now) {
			return
		}
	}
}

func (c *counters) reset() {
	c.connections.Store(0)
	c.peak.Store(c.active.Load())
	c.streams.Store(0)
	c.weighted.Store(0)
	c.sampled.Store(0)
	c.requests.Store(0)
	c.bytesDown.Store(0)
	c.bytesUp.Store(0)
}

func (c *counters) snapshot() map[string]any {
	mean := 0.0
	if n := c.sampled.Load(); n > 0 {
		mean = float64(c.weighted.Load()) / float64(n)
	}
	return map[string]any{
		"mean_streams":     mean,
		"connections":      c.connections.Load(),
		"active":           c.active.Load(),
		"peak_connections": c.peak.Load(),
		"peak_streams":     c.streams.Load(),
		"requests":         c.requests.Load(),
		"bytes_down":       c.bytesDown.Load(),
		"bytes_up":         c.bytesUp.Load(),
	}
}

// bucket is a rate shared by all connections: a virtual clock of when its budget is next free.
type bucket struct {
	mu   sync.Mutex
	rate float64 // bytes per second
	next time.Time
}

// reserve books n bytes no earlier than `at` and returns when they may be sent.
func (b *bucket) reserve(n int, at time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next.After(at) {
		at = b.next
	}
	b.next = at.Add(span(n, b.rate))
	return at
}

func span(n int, rate float64) time.Duration {
	return time.Duration(float64(n) / rate * float64(time.Second))
}

type model struct {
	connRate float64 // bytes per second per connection; 0: none
	latency  time.Duration
	agg      *bucket // nil: no aggregate cap
	bufSize  int
	stats    counters
	mu       sync.Mutex
	open     map[*atomic.Int64]struct{} // per open connection: unix ns of its last response bytes
}

// busyWindow: a connection that sent response bytes this recently counts as a stream in use.
const busyWindow = 100 * time.Millisecond

// sample records, every 10 ms, how many connections are moving response bytes: the connections a
// client downloads over, not those it keeps idle in a pool. peak_streams is the most at once;
// mean_streams their mean weighted by the bytes sent in each sample (the number of streams an
// average byte shared the link with), which short bursts of small answers hardly move.
func (m *model) sample() {
	var before int64
	for range time.Tick(10 * time.Millisecond) {
		now := m.stats.bytesDown.Load()
		sent := now - before
		before = now
		cutoff := time.Now().Add(-busyWindow).UnixNano()
		var busy int64
		m.mu.Lock()
		for last := range m.open {
			if last.Load() > cutoff {
				busy++
			}
		}
		m.mu.Unlock()
		if sent > 0 {
			m.stats.weighted.Add(busy * sent)
			m.stats.sampled.Add(sent)
		}
		for {
			p := m.stats.streams.Load()
			if busy <= p || m.stats.streams.CompareAndSwap(p, busy) {
				break
			}
		}
	}
}

// chunk is the most bytes paced as one piece: about 10 ms at the tightest rate that applies.
func (m *model) chunk() int {
	rate := m.connRate
	if m.agg != nil && (rate == 0 || m.agg.rate < rate) {
		rate = m.agg.rate
	}
	if rate == 0 {
		return m.bufSize
	}
	return max(16<<10, min(m.bufSize, int(rate/100)))
}

func (m *model) serve(ln net.Listener, upstream string) {
	for {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		go m.relay(client.(*net.TCPConn), upstream)
	}
}

func (m *model) relay(client *net.TCPConn, upstream string) {
	defer client.Close()
	conn, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	up := conn.(*net.TCPConn)
	defer up.Close()
	m.stats.open()
	defer m.stats.active.Add(-1)
	last := new(atomic.Int64)
	m.mu.Lock()
	m.open[last] = struct{}{}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.open, last)
		m.mu.Unlock()
	}()
	var pending atomic.Int64 // unix ns of the first byte of a request not yet answered; 0: none
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.upload(client, up, &pending)
	}()
	m.download(up, client, &pending, last)
	<-done
}

// upload copies client -> upstream unpaced and marks when each request began.
func (m *model) upload(client, up *net.TCPConn, pending *atomic.Int64) {
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			pending.CompareAndSwap(0, time.Now().UnixNano())
			m.stats.bytesUp.Add(int64(n)) // counted before the write, as downloads are
			if _, werr := up.Write(buf[:n]); werr != nil {
				client.CloseRead()
				return
			}
		}
		if err != nil {
			up.CloseWrite()
			return
		}
	}
}

// download copies upstream -> client, paced by the model.
func (m *model) download(up, client *net.TCPConn, pending, last *atomic.Int64) {
	buf := make([]byte, m.chunk())
	var connNext time.Time
	for {
		n, err := up.Read(buf)
		if n > 0 {
			at := time.Now()
			if p := pending.Swap(0); p != 0 {
				m.stats.requests.Add(1)
				if first := time.Unix(0, p).Add(m.latency); first.After(at) {
					at = first
				}
			}
			if m.connRate > 0 && connNext.After(at) {
				at = connNext
			}
			if m.agg != nil {
				at = m.agg.reserve(n, at)
			}
			if m.connRate > 0 {
				connNext = at.Add(span(n, m.connRate))
			}
			if wait := time.Until(at); wait > 0 {
				time.Sleep(wait)
			}
			// Counted before the write: a client that has read everything sees it in the stats.
			m.stats.bytesDown.Add(int64(n))
			if _, werr := client.Write(buf[:n]); werr != nil {
				up.CloseRead()
				return
			}
			last.Store(time.Now().UnixNano())
		}
		if err != nil {
			if err != io.EOF {
				client.SetLinger(0) // an upstream reset reaches the client as a reset
			}
			client.CloseWrite()
			return
		}
	}
}

func main() {
	var ups upstreams
	flag.Var(&ups, "upstream", "host:port to forward to (repeatable; one listener each)")
	connRate := flag.Float64("conn-rate", 0, "bytes per second per connection, downloads (0: no cap)")
	aggRate := flag.Float64("aggregate-rate", 0, "bytes per second of all connections together (0: no cap)")
	latency := flag.Duration("latency", 0, "least time from a request's first byte to its response's first byte")
	bufSize := flag.Int("buffer", 256<<10, "largest chunk read and written at once, bytes")
	flag.Parse()
	if len(ups) == 0 {
		fmt.Fprintln(os.Stderr, "netproxy: at least one -upstream is needed")
		os.Exit(2)
	}
	if *connRate < 0 || *aggRate < 0 || *latency < 0 || *bufSize < 4096 {
		fmt.Fprintln(os.Stderr, "netproxy: rates and latency must be >= 0 and -buffer >= 4096")
		os.Exit(2)
	}
	m := &model{connRate: *connRate, latency: *latency, bufSize: *bufSize, open: map[*atomic.Int64]struct{}{}}
	if *aggRate > 0 {
		m.agg = &bucket{rate: *aggRate}
	}
	for _, u := range ups {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "netproxy:", err)
			os.Exit(1)
		}
		fmt.Printf("listen %s %s\n", u, ln.Addr())
		go m.serve(ln, u)
	}
	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "netproxy:", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(m.stats.snapshot())
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, _ *http.Request) {
		m.stats.reset()
		w.WriteHeader(http.StatusNoContent)
	})
	go m.sample()
	fmt.Printf("admin %s\nready\n", admin.Addr())
	if err := http.Serve(admin, mux); err != nil {
		fmt.Fprintln(os.Stderr, "netproxy:", err)
		os.Exit(1)
	}
}
