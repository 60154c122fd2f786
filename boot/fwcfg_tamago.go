//go:build tamago

package boot

import "github.com/physmap/physmap/amd64"

// fwCfgPorts is the fw_cfg device reached through x86 I/O ports.
type fwCfgPorts struct{}

func (fwCfgPorts) Select(key uint16) { amd64.Outw(FW_CFG_PORT_SEL, key) }

func (fwCfgPorts) Read(p []byte) {
	for i := range p {
		p[i] = amd64.Inb(FW_CFG_PORT_DATA)
	}
}

// OpenFwCfg returns QEMU's fw_cfg device, or ErrNoFwCfg.
func OpenFwCfg() (*FwCfg, error) {
	return newFwCfg(fwCfgPorts{})
}
