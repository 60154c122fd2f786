//go:build tamago

package programs

import "embed"

// elfs are the programs as make programs linked them; the kernel's build
// target depends on them, so they exist whenever the kernel builds.
//
//go:embed obj/*.elf
var elfs embed.FS

// Probe returns probe.c's executable.
func Probe() []byte {
	data, _ := elfs.ReadFile("obj/probe.elf") // an embedded file reads
	return data
}
