package exec

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"

	"github.com/physmap/physmap/mm"
)

// pageSize is the granule segments are mapped in.
const pageSize = uint64(mm.Size4K)

// Segment is one PT_LOAD: VA is p_vaddr, Data the file bytes (p_filesz of
// them), MemSize p_memsz.
type Segment struct {
	VA      mm.VirtAddr
	MemSize uint64
	Data    []byte
	Write   bool
	Exec    bool
}

// Pages is the page-aligned range the segment occupies.
func (s Segment) Pages() mm.VirtRange {
	return mm.VirtRange{Start: s.VA.AlignDown(pageSize), End: s.VA.Add(s.MemSize).AlignUp(pageSize)}
}

// Attrs is the segment's page protection for a process: user, writable
// for PF_W, NX unless PF_X (Linux's vm_flags from p_flags, make_prot).
func (s Segment) Attrs() mm.Attr {
	a := mm.AttrUser
	if s.Write {
		a |= mm.AttrWrite
	}
	if !s.Exec {
		a |= mm.AttrNX
	}
	return a
}

// Program is an executable ready to map.
type Program struct {
	Entry    mm.VirtAddr
	Segments []Segment
}

// Pages is the number of 4 KiB pages the segments occupy.
func (p *Program) Pages() uint64 {
	var n uint64
	for _, s := range p.Segments {
		n += s.Pages().Len() / pageSize
	}
	return n
}

// Limits bound what Load accepts.
type Limits struct {
	// Range is where segments may lie: the user half below the stack,
	// less what the kernel keeps there.
	Range mm.VirtRange
	// Avoid is a range no segment may touch (the runtime's window).
	Avoid mm.VirtRange
	// MaxPages bounds the segments' pages.
	MaxPages uint64
}

// Errors from Load, wrapped with the details.
var (
	ErrNotELF     = errors.New("not an ELF file")
	ErrNotStatic  = errors.New("not a static x86-64 executable")
	ErrBadSegment = errors.New("bad segment")
	ErrTooLarge   = errors.New("too large")
	ErrBadEntry   = errors.New("bad entry point")
)

// Load reads an executable from data. The segments' Data alias data.
func Load(data []byte, lim Limits) (*Program, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotELF, err)
	}
	if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB || f.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("%w: %v %v %v, want ELFCLASS64 ELFDATA2LSB EM_X86_64", ErrNotStatic, f.Class, f.Data, f.Machine)
	}
	if f.Type != elf.ET_EXEC {
		return nil, fmt.Errorf("%w: type %v, want ET_EXEC (link with -static -no-pie)", ErrNotStatic, f.Type)
	}
	p := &Program{Entry: mm.VirtAddr(f.Entry)}
	for i, ph := range f.Progs {
		switch ph.Type {
		case elf.PT_INTERP, elf.PT_DYNAMIC:
			return nil, fmt.Errorf("%w: program header %d is %v: dynamically linked", ErrNotStatic, i, ph.Type)
		case elf.PT_TLS:
			return nil, fmt.Errorf("%w: program header %d is PT_TLS: physmap sets up no thread-local storage", ErrNotStatic, i)
		case elf.PT_LOAD:
		default:
			continue
		}
		s, err := segment(data, i, ph, lim)
		if err != nil {
			return nil, err
		}
		for j, o := range p.Segments {
			if s.Pages().Overlaps(o.Pages()) {
				return nil, fmt.Errorf("%w: segment %d %v and segment %d %v share a page", ErrBadSegment, j, o.Pages(), len(p.Segments), s.Pages())
			}
		}
		p.Segments = append(p.Segments, s)
	}
	if len(p.Segments) == 0 {
		return nil, fmt.Errorf("%w: no PT_LOAD segment", ErrBadSegment)
	}
	if n := p.Pages(); n > lim.MaxPages {
		return nil, fmt.Errorf("%w: %d pages, the limit is %d", ErrTooLarge, n, lim.MaxPages)
	}
	inText := false
	for _, s := range p.Segments {
		if s.Exec && p.Entry >= s.VA && uint64(p.Entry-s.VA) < s.MemSize {
			inText = true
		}
	}
	if !inText {
		return nil, fmt.Errorf("%w: %v is in no executable segment", ErrBadEntry, p.Entry)
	}
	return p, nil
}

// segment checks one PT_LOAD header.
func segment(data []byte, i int, ph *elf.Prog, lim Limits) (Segment, error) {
	bad := func(format string, args ...any) (Segment, error) {
		return Segment{}, fmt.Errorf("%w: segment %d (p_vaddr %#x): %s", ErrBadSegment, i, ph.Vaddr, fmt.Sprintf(format, args...))
	}
	w, x := ph.Flags&elf.PF_W != 0, ph.Flags&elf.PF_X != 0
	switch {
	case ph.Filesz > ph.Memsz:
		return bad("p_filesz %#x exceeds p_memsz %#x", ph.Filesz, ph.Memsz)
	case ph.Memsz == 0:
		return bad("empty")
	case ph.Off > uint64(len(data)) || ph.Filesz > uint64(len(data))-ph.Off:
		return bad("file bytes [%#x, +%#x) beyond the file's %#x", ph.Off, ph.Filesz, len(data))
	case ph.Vaddr%pageSize != ph.Off%pageSize:
		return bad("p_vaddr and p_offset differ modulo the page size")
	case w && x:
		return bad("writable and executable (W^X)")
	case ph.Memsz > lim.Range.Len() || ph.Vaddr < uint64(lim.Range.Start) || ph.Vaddr-uint64(lim.Range.Start) > lim.Range.Len()-ph.Memsz:
		return bad("[%#x, +%#x) outside the allowed %v", ph.Vaddr, ph.Memsz, lim.Range)
	}
	s := Segment{VA: mm.VirtAddr(ph.Vaddr), MemSize: ph.Memsz, Data: data[ph.Off : ph.Off+ph.Filesz], Write: w, Exec: x}
	if !lim.Avoid.Empty() && s.Pages().Overlaps(lim.Avoid) {
		return bad("%v overlaps %v, which the kernel keeps", s.Pages(), lim.Avoid)
	}
	return s, nil
}
