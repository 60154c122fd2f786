//go:build tamago

package amd64

// Sgdt returns the GDTR: the linear base address of the GDT in use and its
// limit (its size in bytes minus one), as SGDT stores them (SDM Vol. 2B
// "SGDT—Store Global Descriptor Table Register"). Defined in desc.s.
func Sgdt() (base uint64, limit uint16)

// Sidt returns the IDTR the same way (SDM Vol. 2B "SIDT").
func Sidt() (base uint64, limit uint16) { return sidt() }

// Lgdt loads the GDTR (SDM Vol. 2A "LGDT/LIDT"). The segment registers
// keep their cached descriptors: a new GDT must hold the ones in use at
// the same selectors.
func Lgdt(base uint64, limit uint16)

// Lidt loads the IDTR.
func Lidt(base uint64, limit uint16)

// Ltr loads the task register with a TSS descriptor's selector, which
// sets the descriptor's busy bit in the GDT: the GDT must be writable
// (SDM Vol. 2A "LTR").
func Ltr(sel uint16)

// Str returns the task register's selector (SDM Vol. 2B "STR").
func Str() uint16
