//go:build tamago

package boot

import (
	"errors"
	"unsafe"

	"github.com/physmap/physmap/amd64"
)

// PVHMemmap returns a copy of the memory map the boot loader passed in the
// hvm_start_info structure (Xen's arch-x86/hvm/start_info.h, version 1 and
// later): memmap_entries records of 24 bytes each (addr u64, size u64,
// type u32, reserved u32). It is a second firmware memory map, apart from
// fw_cfg's etc/e820.
//
// Precondition: the early identity map is still live (before the kernel's
// own tables are loaded).
func PVHMemmap() ([]byte, error) {
	info, _ := PVHStartInfo()
	if info == 0 || *(*uint32)(amd64.Ptr(uint64(info))) != hvmStartMagic {
		return nil, errors.New("no hvm_start_info from the boot loader")
	}
	if v := *(*uint32)(amd64.Ptr(uint64(info + hvmStartVersionOff))); v < 1 {
		return nil, errors.New("hvm_start_info version 0 has no memory map")
	}
	pa := *(*uint64)(amd64.Ptr(uint64(info + hvmStartMemmapOff)))
	n := *(*uint32)(amd64.Ptr(uint64(info + hvmStartEntriesOff)))
	if pa == 0 || n == 0 {
		return nil, errors.New("hvm_start_info has an empty memory map")
	}
	if n > 1024 {
		return nil, errors.New("hvm_start_info's memory map has more than 1024 entries")
	}
	return append([]byte(nil), unsafe.Slice((*byte)(amd64.Ptr(pa)), int(n)*hvmMemmapEntrySize)...), nil
}

// ShortenPVHMemmapRAM shrinks the last RAM entry of the boot loader's
// memory map by n bytes, in place: the pvh-memmap-differs injection, a
// corruption of firmware data in memory.
// Precondition: as for PVHMemmap.
func ShortenPVHMemmapRAM(n uint64) error {
	info, _ := PVHStartInfo()
	raw, err := PVHMemmap()
	if err != nil {
		return err
	}
	pa := *(*uint64)(amd64.Ptr(uint64(info + hvmStartMemmapOff)))
	for i := len(raw)/hvmMemmapEntrySize - 1; i >= 0; i-- {
		e := pa + uint64(i*hvmMemmapEntrySize)
		if *(*uint32)(amd64.Ptr(e + 16)) == hvmMemmapRAM {
			size := (*uint64)(amd64.Ptr(e + 8))
			if *size <= n {
				return errors.New("the last RAM entry is too small to shorten")
			}
			*size -= n
			return nil
		}
	}
	return errors.New("no RAM entry in the PVH memory map")
}
