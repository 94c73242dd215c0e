package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Output is the one writer of worker output. Every worker's stdout and
// stderr are read through pipes and written here a whole line at a time, so
// lines of different workers never interleave inside a line.
//
// Output is safe for concurrent use.
type Output struct {
	stdout io.Writer
	stderr io.Writer
	prefix bool
	colour bool

	mu sync.Mutex // serialises writes to stdout and stderr

	readers sync.WaitGroup
}

// OutputConfig configures an Output.
type OutputConfig struct {
	Stdout io.Writer // where workers' stdout lines go (default os.Stdout)
	Stderr io.Writer // where workers' stderr lines go (default os.Stderr)
	Prefix bool      // put "[id] " before each line
	Colour bool      // colour the prefix (for terminals)
}

// NewOutput returns an Output.
func NewOutput(cfg OutputConfig) *Output {
	o := &Output{stdout: cfg.Stdout, stderr: cfg.Stderr, prefix: cfg.Prefix, colour: cfg.Colour}
	if o.stdout == nil {
		o.stdout = os.Stdout
	}
	if o.stderr == nil {
		o.stderr = os.Stderr
	}
	return o
}

const (
	// maxLine is the longest line kept whole; a longer one is cut into
	// pieces of this size, each written as a line.
	maxLine = 64 << 10
	// partialLineWait is how long a line without its newline waits for the
	// rest before it is written as it is.
	partialLineWait = 200 * time.Millisecond
	tailLines       = 20
)

// Tail keeps the last lines a worker printed, for crash reports.
// It is safe for concurrent use.
type Tail struct {
	mu    sync.Mutex // protects lines
	lines []string
}

func (t *Tail) add(line []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == tailLines {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:tailLines-1]
	}
	t.lines = append(t.lines, string(line))
}

// Lines returns a copy of the kept lines, oldest first.
func (t *Tail) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}

// pipeReaders counts the readers of one worker's two pipes; done closes
// when both have seen the end of their pipe.
type pipeReaders struct {
	left atomic.Int32
	done chan struct{}
}

// finished notes that one reader is done.
func (p *pipeReaders) finished() {
	if p.left.Add(-1) == 0 {
		close(p.done)
	}
}

// attach returns pipe ends for a worker's stdout and stderr. The caller
// passes them to the child and closes them after the child started; the
// lines read are written to the output and kept in tail. done closes once
// both pipes have ended and their last lines are in tail.
func (o *Output) attach(id int, tail *Tail) (stdout, stderr *os.File, done <-chan struct{}, err error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pipe for stdout: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, nil, nil, fmt.Errorf("pipe for stderr: %w", err)
	}
	p := &pipeReaders{done: make(chan struct{})}
	p.left.Store(2)
	o.readers.Add(2)
	go o.copyLines(outR, o.stdout, id, tail, p)
	go o.copyLines(errR, o.stderr, id, tail, p)
	return outW, errW, p.done, nil
}

// Wait waits until every pipe reader has seen the end of its pipe, or until
// timeout. Readers end when every process holding a pipe's write end is gone.
func (o *Output) Wait(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() {
		o.readers.Wait()
		close(done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// copyLines reads one pipe until its end and writes what it reads line by line.
func (o *Output) copyLines(r *os.File, w io.Writer, id int, tail *Tail, p *pipeReaders) {
	defer o.readers.Done()
	defer p.finished()
	defer r.Close()
	lr := lineReader{r: r, buf: make([]byte, 0, 4096)}
	for {
		line, err := lr.next()
		if line != nil {
			o.writeLine(w, id, line)
			if tail != nil {
				tail.add(line)
			}
		}
		if err != nil {
			return
		}
	}
}

func (o *Output) writeLine(w io.Writer, id int, line []byte) {
	var p []byte
	if o.prefix {
		p = o.appendPrefix(make([]byte, 0, len(line)+16), id)
	}
	p = append(p, line...)
	p = append(p, '\n')
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = w.Write(p) // a closed stdout has nowhere to report to
}

// prefixColours are ANSI colours for worker prefixes, chosen to read on dark
// and light terminals alike.
var prefixColours = [...]string{"36", "33", "32", "35", "34", "31"}

func (o *Output) appendPrefix(p []byte, id int) []byte {
	if o.colour {
		p = append(p, "\x1b["...)
		p = append(p, prefixColours[id%len(prefixColours)]...)
		p = append(p, 'm')
	}
	p = append(p, '[')
	p = strconv.AppendInt(p, int64(id), 10)
	p = append(p, ']')
	if o.colour {
		p = append(p, "\x1b[0m"...)
	}
	return append(p, ' ')
}

// lineReader splits a pipe into lines, writing out a partial line when the
// rest does not follow within partialLineWait, and cutting overlong lines.
type lineReader struct {
	r   *os.File
	buf []byte
	// start is where the unread part of buf begins.
	start int
	err   error
}

// next returns the next line without its newline; the slice is valid until
// the next call. It returns a nil line with the error at the end.
func (l *lineReader) next() ([]byte, error) {
	for {
		pending := l.buf[l.start:]
		if i := bytes.IndexByte(pending, '\n'); i >= 0 {
			l.start += i + 1
			return pending[:i], nil
		}
		if len(pending) >= maxLine {
			l.start += maxLine
			return pending[:maxLine], nil
		}
		if l.err != nil {
			l.buf, l.start = l.buf[:0], 0
			if len(pending) > 0 {
				return pending, nil
			}
			return nil, l.err
		}
		if l.fill() {
			if pending = l.buf[l.start:]; len(pending) > 0 {
				l.start = len(l.buf)
				return pending, nil
			}
		}
	}
}

// fill reads more into buf. It reports true when a partial line has waited
// long enough and must be written as it is.
func (l *lineReader) fill() bool {
	if l.start > 0 {
		n := copy(l.buf, l.buf[l.start:])
		l.buf, l.start = l.buf[:n], 0
	}
	if len(l.buf) == cap(l.buf) {
		l.buf = append(l.buf, make([]byte, cap(l.buf))...)[:len(l.buf)]
	}
	deadline := time.Time{}
	if len(l.buf) > 0 {
		deadline = time.Now().Add(partialLineWait)
	}
	if err := l.r.SetReadDeadline(deadline); err != nil {
		deadline = time.Time{}
	}
	n, err := l.r.Read(l.buf[len(l.buf):cap(l.buf)])
	l.buf = l.buf[:len(l.buf)+n]
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return n == 0
	}
	if err != nil {
		l.err = err
	}
	return false
}
