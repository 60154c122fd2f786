//go:build tamago

package amd64

// Sgdt returns the GDTR: the linear base address of the GDT in use and its
// limit (its size in bytes minus one), as SGDT stores them (SDM Vol. 2B
// "SGDT—Store Global Descriptor Table Register"). Defined in desc.s.
func Sgdt() (base uint64, limit uint16)

// Sidt returns the IDTR the same way (SDM Vol. 2B "SIDT").
func Sidt() (base uint64, limit uint16) { return sidt() }
