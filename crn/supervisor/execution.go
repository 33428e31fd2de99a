package supervisor

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-aleph/go-aleph/crn/api"
	"github.com/go-aleph/go-aleph/crn/cache"
	"github.com/go-aleph/go-aleph/crn/executor"
	"github.com/go-aleph/go-aleph/crn/protocol"
	"github.com/go-aleph/go-aleph/crn/resolve"
)

// execution is one run of a program, from creation to stop.
type execution struct {
	hash       string
	persistent bool

	ready chan struct{} // closed when started, or when the start failed
	err   error         // why the start failed; set before ready closes

	// Set by start, read after ready.
	prog    *resolve.Program
	backend executor.Executor
	inst    executor.Instance
	net     *NetConfig
	handles []*cache.Handle

	mu       sync.Mutex
	times    api.Times
	inflight int
	idle     chan struct{} // closed when inflight drops to 0 while stopping
	timer    *time.Timer
	stopping bool

	stopOnce sync.Once
	stopped  chan struct{}
}

func (ex *execution) isStarted() bool {
	select {
	case <-ex.ready:
		return ex.err == nil
	default:
		return false
	}
}

// watches reports whether the execution depends on the STORE or ref h.
func (ex *execution) watches(h string) bool {
	if !ex.isStarted() {
		return false
	}
	if slices.Contains(ex.prog.WatchRefs, h) {
		return true
	}
	files := []resolve.File{ex.prog.Code, ex.prog.Runtime}
	if ex.prog.Data != nil {
		files = append(files, ex.prog.Data.File)
	}
	for _, v := range ex.prog.Volumes {
		files = append(files, v.File)
	}
	for _, f := range files {
		if f.Ref == h || f.Store == h {
			return true
		}
	}
	return false
}

func (ex *execution) view() api.Execution {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	e := api.Execution{Hash: ex.hash, VMType: "microvm", Times: ex.times}
	if ex.persistent {
		e.VMType = "persistent_program"
	}
	e.Running = !ex.times.StartedAt.IsZero() && ex.times.StoppingAt.IsZero()
	if ex.net != nil {
		e.IPv4Network, e.HostIPv4, e.IPv4IP = ex.net.Network, ex.net.HostIP, ex.net.IP
	}
	return e
}

// begin registers a request; false if the execution is stopping.
func (ex *execution) begin() bool {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.stopping {
		return false
	}
	ex.inflight++
	if ex.timer != nil {
		ex.timer.Stop()
	}
	return true
}

// end ends a request and arms the idle timer.
func (ex *execution) end(p *Pool) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	ex.inflight--
	if ex.inflight > 0 {
		return
	}
	if ex.stopping {
		if ex.idle != nil {
			close(ex.idle)
			ex.idle = nil
		}
		return
	}
	ex.armLocked(p)
}

func (ex *execution) armLocked(p *Pool) {
	if ex.persistent {
		return
	}
	if ex.timer != nil {
		ex.timer.Stop()
	}
	ex.timer = time.AfterFunc(p.cfg.IdleTimeout, func() {
		ex.mu.Lock()
		idle := ex.inflight == 0 && !ex.stopping
		ex.mu.Unlock()
		if idle {
			p.stop(ex, "idle")
		}
	})
}

// waitIdle waits until no request is in flight, or ctx ends.
func (ex *execution) waitIdle(ctx context.Context) {
	ex.mu.Lock()
	if ex.inflight == 0 {
		ex.mu.Unlock()
		return
	}
	if ex.idle == nil {
		ex.idle = make(chan struct{})
	}
	ch := ex.idle
	ex.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// acquire returns the started execution of hash, creating it if needed,
// with one request registered on it (call end when done).
func (p *Pool) acquire(ctx context.Context, hash string) (*execution, error) {
	for range 3 {
		p.mu.Lock()
		if p.draining {
			p.mu.Unlock()
			return nil, errDraining
		}
		ex := p.execs[hash]
		if ex == nil {
			ex = p.newExecution(hash)
		}
		p.mu.Unlock()
		select {
		case <-ex.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if ex.err != nil {
			return nil, ex.err
		}
		if ex.begin() {
			return ex, nil
		}
		// Stopping under us (update, crash): wait for it and go again.
		select {
		case <-ex.stopped:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, errors.New("execution keeps stopping")
}

// newExecution registers a new execution and starts it in the background,
// detached from the request that asked: later requests join it. Call with
// p.mu held.
func (p *Pool) newExecution(hash string) *execution {
	ex := &execution{hash: hash, ready: make(chan struct{}), stopped: make(chan struct{})}
	ex.times.DefinedAt = p.cfg.Now()
	ex.persistent = p.persistent[hash]
	p.execs[hash] = ex
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		err := p.start(ex)
		if err != nil {
			p.log.Warn("program start failed", "hash", hash, "err", err)
			ex.err = err
			p.mu.Lock()
			if p.execs[hash] == ex {
				delete(p.execs, hash)
			}
			p.mu.Unlock()
			ex.stopOnce.Do(func() { close(ex.stopped) })
		}
		close(ex.ready)
		if err == nil {
			go p.monitor(ex)
		}
	}()
	return ex
}

// start prepares and boots the execution.
func (p *Pool) start(ex *execution) (err error) {
	select {
	case p.create <- struct{}{}:
		defer func() { <-p.create }()
	case <-p.ctx.Done():
		return errClosed
	}
	ctx := p.ctx
	ex.mu.Lock()
	ex.times.PreparingAt = p.cfg.Now()
	ex.mu.Unlock()
	t0 := time.Now()
	prog, err := p.cfg.Resolver.Resolve(ctx, ex.hash)
	if err != nil {
		return err
	}
	tResolved := time.Now()
	ex.prog = prog
	if prog.OnPersistent {
		ex.persistent = true
	}
	if err := p.admit(ex); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			p.release(context.WithoutCancel(ctx), ex)
		}
	}()
	if ex.backend, err = p.executorFor(prog); err != nil {
		return err
	}
	spec, cfg, err := p.prepare(ctx, ex)
	if err != nil {
		return err
	}
	now := p.cfg.Now()
	ex.mu.Lock()
	ex.times.PreparedAt, ex.times.StartingAt = now, now
	ex.mu.Unlock()
	tPrepared := time.Now()

	inst, err := ex.backend.Start(ctx, spec)
	if err != nil {
		return fmt.Errorf("%w: %w", errBoot, err)
	}
	tStarted := time.Now()
	ex.inst = inst
	t := inst.Transport()
	if t == nil {
		return fmt.Errorf("%w: the executor has no transport", errBoot)
	}
	rctx, cancel := context.WithTimeout(ctx, p.cfg.ReadyTimeout)
	err = awaitOrExit(rctx, inst, func(ctx context.Context) error {
		_, err := t.AwaitReady(ctx)
		return err
	})
	cancel()
	if err != nil {
		return fmt.Errorf("%w: %w", errInitTimeout, err)
	}
	tReady := time.Now()
	cctx, cancel := context.WithTimeout(ctx, p.cfg.ConfigTimeout)
	err = awaitOrExit(cctx, inst, func(ctx context.Context) error {
		return protocol.Configure(ctx, t, cfg)
	})
	cancel()
	if err != nil {
		return fmt.Errorf("%w: %w", errConfigure, err)
	}
	ex.mu.Lock()
	ex.times.StartedAt = p.cfg.Now()
	ex.mu.Unlock()
	p.log.Info("program started", "hash", ex.hash, "persistent", ex.persistent, "executor", ex.backend.Name(),
		"resolve", tResolved.Sub(t0), "prepare", tPrepared.Sub(tResolved), "boot", tStarted.Sub(tPrepared),
		"ready", tReady.Sub(tStarted), "configure", time.Since(tReady))
	return nil
}

// awaitOrExit runs f, failing early if the guest ends meanwhile.
func awaitOrExit(ctx context.Context, inst executor.Instance, f func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := make(chan error, 1)
	go func() { res <- f(ctx) }()
	select {
	case err := <-res:
		return err
	case <-inst.Done():
		cancel()
		<-res
		return exitError(inst)
	}
}

func exitError(inst executor.Instance) error {
	if err := inst.Err(); err != nil {
		return fmt.Errorf("guest exited: %w", err)
	}
	return errors.New("guest exited")
}

// admit checks the pool's capacity.
func (p *Pool) admit(ex *execution) error {
	if p.cfg.MemoryMiB <= 0 && p.cfg.VCPUs <= 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	mem, cpus := ex.prog.Resources.MemoryMiB, ex.prog.Resources.VCPUs
	for _, o := range p.execs {
		if o == ex || !o.isStarted() {
			continue
		}
		mem += o.prog.Resources.MemoryMiB
		cpus += o.prog.Resources.VCPUs
	}
	if (p.cfg.MemoryMiB > 0 && mem > p.cfg.MemoryMiB) || (p.cfg.VCPUs > 0 && cpus > p.cfg.VCPUs) {
		return errCapacity
	}
	return nil
}

// monitor handles the guest's end: a crash removes the execution (the next
// request boots a new one) and restarts persistent programs.
func (p *Pool) monitor(ex *execution) {
	<-ex.inst.Done()
	ex.mu.Lock()
	stopping := ex.stopping
	ex.mu.Unlock()
	if stopping {
		return
	}
	err := ex.inst.Err()
	lvl := "program exited"
	if executor.IsOOM(err) {
		lvl = "program killed: out of memory"
	}
	p.log.Warn(lvl, "hash", ex.hash, "err", err)
	p.logLine(ex.hash, "system", fmt.Sprintf("%s (%v)", lvl, err))
	p.crashed(ex, "exited")
}

// crashed stops an execution whose program died, and starts persistent
// programs again.
func (p *Pool) crashed(ex *execution, reason string) {
	p.stop(ex, reason)
	p.mu.Lock()
	again := ex.persistent && p.persistent[ex.hash] && !p.closed
	p.mu.Unlock()
	if again {
		p.keepRunning(ex.hash)
	}
}

// keepRunning starts a persistent program, retrying with backoff until it
// runs or is no longer wanted.
func (p *Pool) keepRunning(hash string) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		backoff := time.Second
		for {
			p.mu.Lock()
			want := p.persistent[hash] && !p.closed
			p.mu.Unlock()
			if !want {
				return
			}
			ex, err := p.acquire(p.ctx, hash)
			if err == nil {
				ex.end(p)
				return
			}
			if errors.Is(err, errClosed) || p.ctx.Err() != nil {
				return
			}
			if permanent(err) {
				p.log.Warn("persistent program cannot start", "hash", hash, "err", err)
				return
			}
			p.log.Warn("persistent program start failed, retrying", "hash", hash, "err", err, "in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-p.ctx.Done():
				t.Stop()
				return
			}
			backoff = min(backoff*2, time.Minute)
		}
	}()
}

// stop stops ex with the pool's stop timeout.
func (p *Pool) stop(ex *execution, reason string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), p.cfg.StopTimeout+15*time.Second)
	defer cancel()
	p.stopWith(ctx, ex, reason)
}

// stopWith stops ex once: new requests go to a new execution at once,
// in-flight ones may finish (up to StopTimeout), then the guest is halted and
// everything it used released.
func (p *Pool) stopWith(ctx context.Context, ex *execution, reason string) {
	first := false
	ex.mu.Lock()
	if !ex.stopping {
		ex.stopping, first = true, true
		ex.times.StoppingAt = p.cfg.Now()
		if ex.timer != nil {
			ex.timer.Stop()
		}
	}
	ex.mu.Unlock()
	if !first {
		select {
		case <-ex.stopped:
		case <-ctx.Done():
		}
		return
	}
	p.mu.Lock()
	if p.execs[ex.hash] == ex {
		delete(p.execs, ex.hash)
	}
	p.mu.Unlock()
	<-ex.ready
	if ex.err == nil {
		p.log.Info("stopping program", "hash", ex.hash, "reason", reason)
		wctx, cancel := context.WithTimeout(ctx, p.cfg.StopTimeout)
		ex.waitIdle(wctx)
		cancel()
		if ex.inst != nil {
			select {
			case <-ex.inst.Done():
			default:
				hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_ = protocol.Halt(hctx, ex.inst.Transport())
				cancel()
			}
		}
		p.release(ctx, ex)
	}
	ex.mu.Lock()
	ex.times.StoppedAt = p.cfg.Now()
	ex.mu.Unlock()
	p.mu.Lock()
	p.history = append(p.history, ex)
	if len(p.history) > historySize {
		p.history = p.history[len(p.history)-historySize:]
	}
	p.mu.Unlock()
	ex.stopOnce.Do(func() { close(ex.stopped) })
}

// release frees the instance, network and cached files of ex.
func (p *Pool) release(ctx context.Context, ex *execution) {
	if ex.inst != nil {
		if err := ex.inst.Stop(ctx); err != nil {
			p.log.Warn("stop execution", "hash", ex.hash, "err", err)
		}
	}
	if ex.net != nil && ex.net.Release != nil {
		if err := ex.net.Release(ctx); err != nil {
			p.log.Warn("release network", "hash", ex.hash, "err", err)
		}
	}
	for _, h := range ex.handles {
		h.Release()
	}
	ex.handles = nil
}

// stateDir is a fresh working directory for one execution. Names are short:
// the guest's Unix sockets live below it, and socket paths are limited to
// 107 bytes.
func (p *Pool) stateDir(hash string) string {
	return filepath.Join(p.cfg.StateDir, fmt.Sprintf("%.8s-%s", hash, strconv.FormatUint(p.seq.Add(1), 36)))
}

// maxStateDir bounds StateDir so that StateDir/<name>/run/control.sock fits
// in a socket address.
const maxStateDir = 107 - len("/01234567-zzzzzz/run/control.sock")

func (p *Pool) volumeDir(hash string) string {
	return filepath.Join(p.cfg.DataDir, "volumes", hash)
}
