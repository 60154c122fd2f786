module github.com/physmap/physmap

go 1.26.0

tool github.com/usbarmory/tamago/cmd/tamago

require (
	github.com/digitalocean/go-qemu v0.0.0-20250212194115-ee9b0668d242
	github.com/hbollon/go-edlib v1.7.0
	github.com/usbarmory/tamago v1.26.0
	golang.org/x/arch v0.33.0
	golang.org/x/sys v0.30.0
)

// physmap-linux: the initramfs (cpio) and compressed kernel modules.
require (
	github.com/cavaliergopher/cpio v1.0.1
	github.com/klauspost/compress v1.20.4
	github.com/ulikunitz/xz v0.5.17
)

require github.com/digitalocean/go-libvirt v0.0.0-20220804181439-8648fbde413e // indirect
