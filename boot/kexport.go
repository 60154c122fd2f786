//go:build tamago

package boot

// ConsoleWriteC is the kernel function physmap exports to modules as
// physmap_console_write: unsigned long physmap_console_write(const char
// *s, unsigned long n), in the System V AMD64 calling convention a module
// compiled by gcc calls it with (RDI, RSI, result in RAX; SysV ABI 3.2.3).
// It writes the n bytes at s to COM1, waiting for the transmitter before
// each one as TamaGo's uart.Tx does, and returns n. It is not callable
// from Go; ConsoleWriteCAddr gives its address for the module loader's
// symbol table.
func ConsoleWriteC()

// ConsoleWriteCAddr returns the address of ConsoleWriteC in the runtime's
// identity window (its physical address).
func ConsoleWriteCAddr() uint64
