package webterm

import (
	"sync"

	"github.com/devmesh/devmesh/internal/termproto"
)

// Attachment is one client attached to a session. Its writer goroutine
// sends queued frames to the transport, so a slow client never stalls
// the shell: when the queue is full the client is dropped.
type Attachment struct {
	s  *session
	tr transport

	out  chan []byte   // frames to send
	quit chan struct{} // closed by stop: drop what is queued
	fin  chan struct{} // closed by finish: send what is queued, then end
	once sync.Once     // closes quit
	fone sync.Once     // closes fin
}

func newAttachment(s *session, tr transport) *Attachment {
	a := &Attachment{s: s, tr: tr, out: make(chan []byte, sendQueue), quit: make(chan struct{}), fin: make(chan struct{})}
	s.m.wg.Go(a.writer)
	return a
}

func (a *Attachment) writer() {
	defer a.tr.Close()
	for {
		select {
		case <-a.quit:
			return
		case f := <-a.out:
			if err := a.tr.Send(f); err != nil {
				a.s.m.log.Debug("terminal client dropped", "session", a.s.id, "err", err)
				a.Detach()
				return
			}
		case <-a.fin:
			for {
				select {
				case f := <-a.out:
					if a.tr.Send(f) != nil {
						return
					}
				default:
					return
				}
			}
		}
	}
}

// queue adds a frame without blocking; a full queue drops the client.
func (a *Attachment) queue(f []byte) {
	select {
	case a.out <- f:
	default:
		a.stop()
	}
}

// queueOutput queues p as output frames of at most MaxFrame bytes.
func (a *Attachment) queueOutput(p []byte) {
	for len(p) > 0 {
		n := min(len(p), termproto.MaxFrame-1)
		a.queue(termproto.Frame(termproto.Output, p[:n]))
		p = p[n:]
	}
}

// stop drops the client at once. It never blocks.
func (a *Attachment) stop() { a.once.Do(func() { close(a.quit) }) }

// finish sends what is queued, then closes the transport.
func (a *Attachment) finish() { a.fone.Do(func() { close(a.fin) }) }

// Handle acts on one frame from the client. Malformed frames are
// ignored, like unknown ones.
func (a *Attachment) Handle(f []byte) {
	typ, p, err := termproto.Split(f)
	if err != nil {
		return
	}
	switch typ {
	case termproto.Input:
		_, _ = a.s.shell.Write(p)
	case termproto.Resize:
		if cols, rows, err := termproto.ParseResize(p); err == nil {
			_ = a.s.shell.Resize(cols, rows)
		}
	case termproto.Ping:
		if len(p) <= termproto.MaxPing {
			a.queue(termproto.Frame(termproto.Pong, p))
		}
	}
}

// Detach ends the attachment because its transport closed; the session
// lives on for the idle timeout.
func (a *Attachment) Detach() {
	a.s.detach(a)
	a.stop()
}
