package linux

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/physmap/physmap/kernel/dump"
	"github.com/physmap/physmap/mm"
)

// RecordingVersion is the format version WriteRecording writes.
const RecordingVersion = 1

// Recording is everything one comparison read, enough to run it again on
// any host without QEMU: the registers and flat view QEMU reported, the
// marked lines of the guest's /init, the frames the analysis read (only
// the words it read; the rest of each frame is zero), and physmap's dump.
// physmap-linux -record writes one, gzipped JSON; the host tests replay
// those in testdata.
type Recording struct {
	Version int     `json:"version"`
	Run     RunInfo `json:"run"`
	Regs    struct {
		CR0  dump.Addr `json:"cr0"`
		CR3  dump.Addr `json:"cr3"`
		CR4  dump.Addr `json:"cr4"`
		EFER dump.Addr `json:"efer"`
	} `json:"regs"`
	// Config holds the lines of the kernel's .config the analysis reads.
	Config []string `json:"config,omitempty"`
	// Guest is the /init's marked lines.
	Guest   []string   `json:"guest"`
	Frames  []Frame    `json:"frames"`
	Physmap *dump.Dump `json:"physmap,omitempty"`
}

// Frame is one recorded 4 KiB frame.
type Frame struct {
	PA   dump.Addr `json:"pa"`
	Data []byte    `json:"data"` // PageSize bytes
}

// configRead lists the kernel configuration options the analysis reads.
var configRead = []string{"RANDOMIZE_BASE"}

// NewRecording captures what r's analysis read.
func NewRecording(r *Report) *Recording {
	a := r.Linux
	rec := &Recording{Version: RecordingVersion, Run: r.Run, Physmap: r.Physmap}
	rec.Regs.CR0, rec.Regs.CR3, rec.Regs.CR4, rec.Regs.EFER = dump.Addr(a.Regs.CR0), dump.Addr(a.Regs.CR3), dump.Addr(a.Regs.CR4), dump.Addr(a.Regs.EFER)
	for _, name := range configRead {
		if v := ConfigValue(a.config, name); v != "" {
			rec.Config = append(rec.Config, "CONFIG_"+name+"="+v)
		}
	}
	if a.Guest != nil {
		rec.Guest = a.Guest.Lines
	}
	for _, pa := range a.Mem.Pages() {
		if data := a.Mem.Touched(pa); data != nil {
			rec.Frames = append(rec.Frames, Frame{PA: dump.Addr(pa), Data: data})
		}
	}
	return rec
}

// WriteRecording writes r's recording to path, gzipped JSON.
func WriteRecording(path string, r *Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(f)
	enc := json.NewEncoder(zw)
	if err := enc.Encode(NewRecording(r)); err != nil {
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadRecording reads a file WriteRecording wrote.
func ReadRecording(rd io.Reader) (*Recording, error) {
	zr, err := gzip.NewReader(rd)
	if err != nil {
		return nil, fmt.Errorf("not a physmap-linux recording (gzip: %v)", err)
	}
	var rec Recording
	if err := json.NewDecoder(zr).Decode(&rec); err != nil {
		return nil, fmt.Errorf("not a physmap-linux recording: %v", err)
	}
	if rec.Version != RecordingVersion {
		return nil, fmt.Errorf("recording version %d, this tool reads version %d", rec.Version, RecordingVersion)
	}
	for _, fr := range rec.Frames {
		if len(fr.Data) != PageSize || !mm.PhysAddr(fr.PA).IsAligned(PageSize) {
			return nil, fmt.Errorf("recording: frame %#x has %d bytes or is not page aligned", uint64(fr.PA), len(fr.Data))
		}
	}
	return &rec, nil
}

// Replay runs the comparison again on a recording.
func (rec *Recording) Replay() (*Report, error) {
	pages := map[mm.PhysAddr][]byte{}
	for _, fr := range rec.Frames {
		pages[mm.PhysAddr(fr.PA)] = fr.Data
	}
	src := &PagesSource{Pages: pages, What: fmt.Sprintf("a recording (%d frames)", len(pages))}
	g, err := ParseGuest(strings.NewReader(strings.Join(rec.Guest, "\n")))
	if err != nil {
		return nil, err
	}
	regs := Registers{CR0: uint64(rec.Regs.CR0), CR3: uint64(rec.Regs.CR3), CR4: uint64(rec.Regs.CR4), EFER: uint64(rec.Regs.EFER)}
	config := []byte(strings.Join(rec.Config, "\n"))
	if len(rec.Config) == 0 {
		config = nil
	}
	a, err := Analyze(NewGuestMem(context.Background(), src), regs, g, config)
	if err != nil {
		return nil, err
	}
	return NewReport(a, rec.Physmap, rec.Run), nil
}

// FramesRead lists the recorded frames in address order.
func (rec *Recording) FramesRead() []mm.PhysAddr {
	var out []mm.PhysAddr
	for _, fr := range rec.Frames {
		out = append(out, mm.PhysAddr(fr.PA))
	}
	slices.Sort(out)
	return out
}
