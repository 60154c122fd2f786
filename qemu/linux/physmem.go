package linux

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/physmap/physmap/mm"
	"github.com/physmap/physmap/qemu"
)

// PageSize is the unit guest memory is read in.
const PageSize = 4096

// ErrMemory wraps a failed read of guest physical memory.
var ErrMemory = errors.New("guest memory")

// PageSource reads 4 KiB frames of guest physical memory.
type PageSource interface {
	// ReadPage fills buf with the frame at pa (4 KiB aligned).
	ReadPage(ctx context.Context, pa mm.PhysAddr, buf []byte) error
	// Describe says where the bytes come from, for people.
	Describe() string
}

// GuestMem is a read-only mm.PhysMem over a PageSource. mm's walker cannot
// take an error from a read, so a failed read returns 0 and the first
// failure is kept for Err: every result computed since is suspect. Frames
// read are cached, and the 8-byte words read of each are marked, which
// records what an analysis touched (see Pages and Touched).
type GuestMem struct {
	src   PageSource
	ctx   context.Context
	pages map[mm.PhysAddr][]byte
	words map[mm.PhysAddr]*[wordsPerPage / 64]uint64 // bit i: word i was read
	err   error
}

// wordsPerPage is the number of 8-byte words in a frame.
const wordsPerPage = PageSize / 8

// NewGuestMem reads through src; ctx bounds each read.
func NewGuestMem(ctx context.Context, src PageSource) *GuestMem {
	return &GuestMem{src: src, ctx: ctx, pages: map[mm.PhysAddr][]byte{}, words: map[mm.PhysAddr]*[wordsPerPage / 64]uint64{}}
}

// mark records that the words holding [pa, pa+n) were read; the range lies
// in one frame.
func (m *GuestMem) mark(pa mm.PhysAddr, n int) {
	fr := pa.AlignDown(PageSize)
	w := m.words[fr]
	if w == nil {
		w = new([wordsPerPage / 64]uint64)
		m.words[fr] = w
	}
	off := int(pa - fr)
	for i := off / 8; i <= (off+n-1)/8; i++ {
		w[i/64] |= 1 << (i % 64)
	}
}

// Touched returns a copy of the frame at pa with every word the analysis
// did not read cleared: what a recording keeps, so that it holds table
// entries and the few values read, never a whole page of the guest's code
// or data. It returns nil for a frame never read.
func (m *GuestMem) Touched(pa mm.PhysAddr) []byte {
	p, w := m.pages[pa], m.words[pa]
	if p == nil || w == nil {
		return nil
	}
	out := make([]byte, PageSize)
	for i := range wordsPerPage {
		if w[i/64]&(1<<(i%64)) != 0 {
			copy(out[i*8:i*8+8], p[i*8:i*8+8])
		}
	}
	return out
}

// Source describes where the memory is read from.
func (m *GuestMem) Source() string { return m.src.Describe() }

func (m *GuestMem) page(pa mm.PhysAddr) []byte {
	fr := pa.AlignDown(PageSize)
	if p, ok := m.pages[fr]; ok {
		return p
	}
	buf := make([]byte, PageSize)
	if err := m.src.ReadPage(m.ctx, fr, buf); err != nil {
		if m.err == nil {
			m.err = err
		}
		return nil
	}
	m.pages[fr] = buf
	return buf
}

// Read64 implements mm.PhysMem.
func (m *GuestMem) Read64(pa mm.PhysAddr) uint64 {
	p := m.page(pa)
	if p == nil {
		return 0
	}
	m.mark(pa, 8)
	off := uint64(pa) % PageSize
	return binary.LittleEndian.Uint64(p[off : off+8])
}

// Write64 implements mm.PhysMem; guest memory is never written.
func (m *GuestMem) Write64(pa mm.PhysAddr, v uint64) {
	if m.err == nil {
		m.err = fmt.Errorf("%w: write at %v: guest memory is read-only here", ErrMemory, pa)
	}
}

// ZeroFrame implements mm.PhysMem; guest memory is never written.
func (m *GuestMem) ZeroFrame(pa mm.PhysAddr) { m.Write64(pa, 0) }

// Read copies n bytes at pa.
func (m *GuestMem) Read(pa mm.PhysAddr, n int) ([]byte, error) {
	out := make([]byte, 0, n)
	for len(out) < n {
		p := m.page(pa)
		if p == nil {
			return nil, m.err
		}
		off := int(uint64(pa) % PageSize)
		k := min(n-len(out), PageSize-off)
		m.mark(pa, k)
		out = append(out, p[off:off+k]...)
		pa = pa.Add(uint64(k))
	}
	return out, nil
}

// Err returns the first failed read, or nil.
func (m *GuestMem) Err() error { return m.err }

// Pages returns the frames read so far, in address order.
func (m *GuestMem) Pages() []mm.PhysAddr {
	out := make([]mm.PhysAddr, 0, len(m.pages))
	for pa := range m.pages {
		out = append(out, pa)
	}
	slices.Sort(out)
	return out
}

// spanOf returns the flat-view span holding pa.
func spanOf(spans []Span, pa mm.PhysAddr) (Span, bool) {
	i, found := slices.BinarySearchFunc(spans, pa, func(s Span, pa mm.PhysAddr) int {
		switch {
		case s.Range.End <= pa:
			return -1
		case s.Range.Start > pa:
			return 1
		}
		return 0
	})
	if !found {
		return Span{}, false
	}
	return spans[i], true
}

// FileSource reads guest RAM from a memory backend's file, mapped read-only
// and shared, so it shows the guest's writes as they happen. Spans of the
// flat view that belong to other regions (firmware ROM) go to Other.
type FileSource struct {
	Path    string
	Backend string // the backend's id, the flat view's region name
	Spans   []Span
	Other   PageSource // nil: such reads fail
	data    []byte
}

// OpenFileSource maps path, which must be size bytes long: the backend's
// size from query-memdev.
func OpenFileSource(path string, size uint64, backend string, spans []Span, other PageSource) (*FileSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMemory, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMemory, err)
	}
	if uint64(fi.Size()) != size {
		return nil, fmt.Errorf("%w: %s is %d bytes, but memory backend %q is %d bytes: not that guest's RAM", ErrMemory, path, fi.Size(), backend, size)
	}
	data, err := mmapReadOnly(f, size)
	if err != nil {
		return nil, fmt.Errorf("%w: map %s: %v", ErrMemory, path, err)
	}
	return &FileSource{Path: path, Backend: backend, Spans: spans, Other: other, data: data}, nil
}

// Close unmaps the file.
func (s *FileSource) Close() error {
	if s.data == nil {
		return nil
	}
	err := munmap(s.data)
	s.data = nil
	return err
}

// Describe implements PageSource.
func (s *FileSource) Describe() string {
	return fmt.Sprintf("guest RAM shared with the host (memory backend %q, %s, mapped read-only)", s.Backend, s.Path)
}

// ReadPage implements PageSource.
func (s *FileSource) ReadPage(ctx context.Context, pa mm.PhysAddr, buf []byte) error {
	sp, ok := spanOf(s.Spans, pa)
	switch {
	case !ok:
		return fmt.Errorf("%w: %v is not in the guest's physical address space (QEMU's flat view maps nothing there)", ErrMemory, pa)
	case !sp.RAM():
		return fmt.Errorf("%w: %v is %s (%s), not memory", ErrMemory, pa, sp.Region, sp.Kind)
	case sp.Region != s.Backend:
		if s.Other == nil {
			return fmt.Errorf("%w: %v belongs to %s, not to the shared backend %q", ErrMemory, pa, sp.Region, s.Backend)
		}
		return s.Other.ReadPage(ctx, pa, buf)
	}
	off := sp.Offset + uint64(pa-sp.Range.Start)
	if off+PageSize > uint64(len(s.data)) {
		return fmt.Errorf("%w: %v lies at offset %#x of %q, beyond its %d bytes", ErrMemory, pa, off, s.Backend, len(s.data))
	}
	copy(buf, s.data[off:off+PageSize])
	return nil
}

// XPSource reads guest memory through the monitor's xp command (QEMU
// monitor/hmp-cmds.c: memory_dump), a page per command: the fallback when
// the RAM is not in a shared file.
type XPSource struct {
	HMP   qemu.HMP
	Spans []Span // if set, reads outside RAM spans fail without asking QEMU
}

// Describe implements PageSource.
func (s *XPSource) Describe() string { return "QEMU's monitor (xp), a page per command" }

var xpLine = regexp.MustCompile(`^([0-9a-f]+): ((?:0x[0-9a-f]{16} ?)+)$`)

// ReadPage implements PageSource.
func (s *XPSource) ReadPage(ctx context.Context, pa mm.PhysAddr, buf []byte) error {
	if s.Spans != nil {
		if sp, ok := spanOf(s.Spans, pa); !ok || !sp.RAM() {
			return fmt.Errorf("%w: %v is not RAM in the guest's physical address space", ErrMemory, pa)
		}
	}
	out, err := s.HMP(ctx, fmt.Sprintf("xp /%dgx %#x", PageSize/8, uint64(pa)))
	if err != nil {
		return fmt.Errorf("%w: xp at %v: %v", ErrMemory, pa, err)
	}
	return parseXP(out, pa, buf)
}

// parseXP fills buf from xp /Ngx output starting at pa.
func parseXP(out string, pa mm.PhysAddr, buf []byte) error {
	n := 0
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r ")
		if line == "" {
			continue
		}
		m := xpLine.FindStringSubmatch(line)
		if m == nil {
			return fmt.Errorf("%w: xp at %v answered %q", ErrMemory, pa, firstLine(out))
		}
		addr, _ := strconv.ParseUint(m[1], 16, 64)
		if mm.PhysAddr(addr) != pa.Add(uint64(n)) {
			return fmt.Errorf("%w: xp at %v: line for %#x where %v was due", ErrMemory, pa, addr, pa.Add(uint64(n)))
		}
		for _, w := range strings.Fields(m[2]) {
			v, _ := strconv.ParseUint(strings.TrimPrefix(w, "0x"), 16, 64)
			if n+8 > len(buf) {
				return fmt.Errorf("%w: xp at %v: more than %d bytes", ErrMemory, pa, len(buf))
			}
			binary.LittleEndian.PutUint64(buf[n:], v)
			n += 8
		}
	}
	if n != len(buf) {
		return fmt.Errorf("%w: xp at %v gave %d bytes, want %d", ErrMemory, pa, n, len(buf))
	}
	return nil
}

// PagesSource serves frames from a map, as a recording holds them.
type PagesSource struct {
	Pages map[mm.PhysAddr][]byte
	What  string
}

// Describe implements PageSource.
func (s *PagesSource) Describe() string { return s.What }

// ReadPage implements PageSource.
func (s *PagesSource) ReadPage(_ context.Context, pa mm.PhysAddr, buf []byte) error {
	p, ok := s.Pages[pa]
	if !ok {
		return fmt.Errorf("%w: frame %v is not in the recording", ErrMemory, pa)
	}
	copy(buf, p)
	return nil
}
