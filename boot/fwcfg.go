package boot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// QEMU's firmware configuration device (QEMU docs/specs/fw_cfg.rst): a
// 16-bit selector port and a byte-wide data port on x86.
const (
	FW_CFG_PORT_SEL  = 0x510
	FW_CFG_PORT_DATA = 0x511

	FW_CFG_SIGNATURE    = 0x00 // reads "QEMU"
	FW_CFG_CMDLINE_SIZE = 0x14 // u32 little-endian, including the NUL
	FW_CFG_CMDLINE_DATA = 0x15
	FW_CFG_FILE_DIR     = 0x19 // big-endian count, then fwCfgFileSize-byte records

	fwCfgFileSize = 64 // size u32 BE, select u16 BE, reserved u16, name[56]
	fwCfgNameSize = 56
)

// fwCfgSignature is what FW_CFG_SIGNATURE reads on QEMU.
const fwCfgSignature = "QEMU"

// fwCfgMaxFile bounds a file read, so a corrupt directory cannot make the
// kernel allocate without limit.
const fwCfgMaxFile = 1 << 20

// ErrNoFwCfg reports a machine without QEMU's fw_cfg device.
var ErrNoFwCfg = errors.New("no QEMU fw_cfg device at port 0x510")

// fwCfgDevice selects an item and reads its bytes in order.
type fwCfgDevice interface {
	Select(key uint16)
	Read(p []byte)
}

// FwCfg reads items and files from QEMU's fw_cfg device.
type FwCfg struct {
	dev fwCfgDevice
}

// newFwCfg checks the device signature.
func newFwCfg(dev fwCfgDevice) (*FwCfg, error) {
	sig := make([]byte, len(fwCfgSignature))
	dev.Select(FW_CFG_SIGNATURE)
	dev.Read(sig)
	if string(sig) != fwCfgSignature {
		return nil, fmt.Errorf("%w (signature %q)", ErrNoFwCfg, sig)
	}
	return &FwCfg{dev: dev}, nil
}

// Item reads n bytes of the item selected by key.
func (f *FwCfg) Item(key uint16, n int) []byte {
	b := make([]byte, n)
	f.dev.Select(key)
	f.dev.Read(b)
	return b
}

// File reads the named file from the fw_cfg file directory.
func (f *FwCfg) File(name string) ([]byte, error) {
	f.dev.Select(FW_CFG_FILE_DIR)
	var hdr [4]byte
	f.dev.Read(hdr[:])
	count := binary.BigEndian.Uint32(hdr[:])
	var rec [fwCfgFileSize]byte
	for i := uint32(0); i < count; i++ {
		f.dev.Read(rec[:])
		recName := strings.TrimRight(string(rec[8:8+fwCfgNameSize]), "\x00")
		if recName != name {
			continue
		}
		size := binary.BigEndian.Uint32(rec[0:4])
		if size > fwCfgMaxFile {
			return nil, fmt.Errorf("fw_cfg file %q is %d bytes, more than the %d this kernel reads", name, size, fwCfgMaxFile)
		}
		return f.Item(binary.BigEndian.Uint16(rec[4:6]), int(size)), nil
	}
	return nil, fmt.Errorf("fw_cfg has no file %q", name)
}

// CommandLine returns the kernel command line given to QEMU with -append.
func (f *FwCfg) CommandLine() string {
	size := binary.LittleEndian.Uint32(f.Item(FW_CFG_CMDLINE_SIZE, 4))
	if size == 0 {
		return ""
	}
	if size > fwCfgMaxFile {
		size = fwCfgMaxFile
	}
	return strings.TrimRight(string(f.Item(FW_CFG_CMDLINE_DATA, int(size))), "\x00")
}
