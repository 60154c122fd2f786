//go:build tamago

package amd64

// Image returns the bounds of the running executable's segments, from the
// Go linker's symbols (cmd/link: runtime.text, runtime.etext, ...). They are
// virtual addresses equal to physical ones, as TamaGo links and runs the
// image at its load address. Defined in image.s.
//
// text..etext is code; rodata..noptrdata read-only data (types, pclntab,
// typelinks); noptrdata..end the writable data and bss. The writable
// segment starts at the page holding runtime.noptrdata: the linker puts the
// small .go.buildinfo and .go.module sections first in it.
func Image() (text, etext, rodata, noptrdata, end uint64)

// RIPProbe is a routine for ProbeCall that returns the address it runs at:
// its first instruction is LEA RAX, [RIP+0] (7 bytes), so it returns its
// own address plus RIPProbeLen, whichever alias it was called through.
func RIPProbe()

// RIPProbeAddr returns RIPProbe's address in the image.
func RIPProbeAddr() uint64

// RIPProbeLen is the length of RIPProbe's first instruction.
const RIPProbeLen = 7
