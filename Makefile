# physmap: build, boot and test the unikernel.
#
#   make qemu    build the kernel and boot it, console on this terminal
#   make test    host unit tests, then the QEMU boot matrix under TCG
#   make map     boot the kernel and draw its live address space, build/physmap-map.svg and .png
#   make docs    boot the README's configurations and rewrite its sample outputs, tables and picture
#   make docs-check  fail when README.md or docs/physmap-map.svg is not what make docs writes (make test)
#   make bench   time physmap against a minimal TamaGo kernel, build/bench.json
#   make mutate  apply each mutant of the checking code, rebuild, run the tests: every mutant must die
#   make soak    boot physmap 300 times under host load, failures by check
#   make help    every target, one line each
#   make modules compile the C modules the kernel embeds, kernel/modules/obj
#   make programs link the C user programs the kernel runs as processes, kernel/programs/obj
#
# The QEMU command line lives in one place, the Go harness qemu/
# (go run ./qemu/cmd/physmap-run -print shows it); this file never repeats it.

SHELL := /bin/bash

APP      := physmap
BUILD    := build
ELF      := $(BUILD)/$(APP).elf
# The yardstick of make bench: a TamaGo kernel on the same board that only
# prints a line and exits (kernel/baseline).
BASELINE := $(BUILD)/baseline.elf

# The TamaGo compiler. By default it is the one `go tool tamago` runs: the
# tool declared in go.mod, which fetches and builds tamago-go at the tag
# matching the tamago module version on first use. The host go command
# refuses GOOS=tamago, so the tool is resolved with the host environment and
# then run directly. Override with TAMAGO=/path/to/tamago-go/bin/go.
TAMAGO ?= $(shell go tool -n tamago)

# Where that tool keeps tamago-go (its goroot: the user cache dir, then
# tamago-go + the module version), only to say before a cold build that it
# will be fetched and built.
TAMAGO_VERSION := $(shell awk '$$1 == "github.com/usbarmory/tamago" { print $$2 }' go.mod)
TAMAGO_GOROOT := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/tamago-go/tamago-go$(TAMAGO_VERSION:v%=%)

GOENV := GOOS=tamago GOARCH=amd64 GOOSPKG=github.com/usbarmory/tamago CGO_ENABLED=0
# The image's link address: 2 MiB into the runtime's window (TamaGo's
# ramStart, amd64/mem.go, 0x10000000), so that _text is 2 MiB aligned as
# Linux's is (CONFIG_PHYSICAL_ALIGN). TamaGo's examples use ramStart +
# 0x10000; the 2 MiB below the image are left unused.
TEXT_START := 0x10200000
# linkramsize: boot/board.go sets the runtime's memory window;
# linkcpuinit: boot/cpuinit.s replaces TamaGo's early boot (LA57, no 1 GiB pages).
BUILD_TAGS := linkramsize,linkcpuinit
GOFLAGS := -tags $(BUILD_TAGS) -trimpath -ldflags "-T $(TEXT_START) -R 0x1000"

KERNEL_SRC := $(shell find kernel boot amd64 mm -name '*.go' -o -name '*.s') go.mod go.sum
# The link flags live here: a change to them rebuilds the kernel.
KERNEL_SRC += Makefile

# Modules: C sources in kernel/modules/c, compiled as Linux compiles a module
# for x86-64 into relocatable objects (ET_REL, as a .ko is) that the kernel
# embeds (go:embed reaches only below its package, hence obj/ there, not
# build/). Tests compile them again into a temporary MODULE_OBJ, and their
# own test modules with MODULES_DIR and MODULES.
MODULES_INC := kernel/modules/c
MODULES_DIR ?= kernel/modules/c
MODULES     ?= reloc deps
MODULE_OBJ  ?= kernel/modules/obj
MODULE_OBJS := $(MODULES:%=$(MODULE_OBJ)/%.o)
MODULE_CC   ?= gcc

# The flags of Linux 6.1's build that shape a module's code, with why where
# it matters here. Top-level Makefile: -O2 (CONFIG_CC_OPTIMIZE_FOR_PERFORMANCE,
# set in Debian's config) -std=gnu11 -fno-strict-aliasing
# -fno-common (simplify_symbols refuses SHN_COMMON) -fno-PIE (Debian's gcc
# defaults to PIE; PIC code would need GOT relocations the loader refuses)
# -fno-delete-null-pointer-checks -fno-strict-overflow -DMODULE, and
# -nostdinc with no libc. arch/x86/Makefile for 64-bit: -m64
# -mcmodel=kernel (every address in the top 2 GiB, reached by 32S and PC32
# relocations) -mno-red-zone (interrupts and exceptions push onto the
# stack below RSP) -mno-sse -mno-mmx -mno-sse2 -mno-3dnow -mno-avx
# -mno-80387 -mno-fp-ret-in-387 (no FPU or vector state in the kernel)
# -mpreferred-stack-boundary=3 -mskip-rax-setup -falign-jumps=1
# -falign-loops=1 -fno-asynchronous-unwind-tables (no .eh_frame),
# -fcf-protection=none (arch/x86/Makefile's choice without
# CONFIG_X86_KERNEL_IBT: no ENDBR64, no .note.gnu.property). Departures:
# -fno-pic as well, -ffreestanding (arch/x86/Makefile gives it only to
# 32-bit kernels), -fno-stack-protector where Debian's
# CONFIG_STACKPROTECTOR_STRONG gives -fstack-protector-strong (it needs
# the per-CPU canary at %gs:40), and none of CONFIG_RETPOLINE's and
# CONFIG_RETHUNK's -mindirect-branch=thunk-extern and
# -mfunction-return=thunk-extern (each return would jump to the kernel's
# __x86_return_thunk); -Werror is physmap's.
MODULE_CFLAGS := -std=gnu11 -nostdinc -ffreestanding -fno-common \
	-fno-strict-aliasing -fno-PIE -fno-pic -fno-stack-protector \
	-fno-delete-null-pointer-checks -fno-strict-overflow \
	-m64 -mcmodel=kernel -mno-red-zone \
	-mno-sse -mno-mmx -mno-sse2 -mno-3dnow -mno-avx -mno-80387 -mno-fp-ret-in-387 \
	-mpreferred-stack-boundary=3 -mskip-rax-setup -falign-jumps=1 -falign-loops=1 \
	-fno-asynchronous-unwind-tables -fcf-protection=none \
	-O2 -Wall -Werror -D__KERNEL__ -DMODULE -I$(MODULES_INC)
# Assembler sources (test modules) as Linux assembles them: KBUILD_AFLAGS.
MODULE_AFLAGS := -D__ASSEMBLY__ -fno-PIE -m64 -D__KERNEL__ -DMODULE -I$(MODULES_INC)

# User programs: C sources in kernel/programs/c, linked as Linux runs a
# static program: ET_EXEC at the default 0x400000 (-static -no-pie), no
# libc or start files (-nostdlib: the program makes its system calls
# itself), text apart from the read-only headers and data
# (-z separate-code, Debian's default), a non-executable stack, no build-id
# note. -mgeneral-regs-only: physmap saves no FPU or vector state when it
# switches processes (a departure: Linux saves it with XSAVE), so a program
# may not keep any. The kernel embeds them from kernel/programs/obj.
PROGRAMS_DIR ?= kernel/programs/c
PROGRAMS     ?= probe
PROGRAM_OBJ  ?= kernel/programs/obj
PROGRAM_ELFS := $(PROGRAMS:%=$(PROGRAM_OBJ)/%.elf)
PROGRAM_CFLAGS := -std=gnu11 -O2 -Wall -Werror -ffreestanding -fno-builtin \
	-fno-pie -fno-stack-protector -fcf-protection=none -fno-asynchronous-unwind-tables \
	-mgeneral-regs-only
PROGRAM_LDFLAGS := -static -no-pie -nostdlib -nostartfiles \
	-Wl,-z,separate-code -Wl,-z,noexecstack -Wl,--build-id=none

# Options for the harness, e.g. make qemu RUNFLAGS='-m 6G -append physmap.hold=1'
RUNFLAGS ?=

# Options for physmap-map (harness flags, -o): by default the 4-level layout,
# the one Linux's mm.rst tables first, e.g. make map MAPFLAGS='-m 2G' for the
# 5-level one on a CPU with LA57, or a process's view under PTI:
# make map MAPFLAGS="-append 'physmap.levels=4 pti=on physmap.mm=1'"
MAPFLAGS ?= -append physmap.levels=4

# Options for physmap-bench, e.g. make bench BENCHFLAGS='-n 9 -largest none'
BENCHFLAGS ?=

# Options for physmap-mutate, e.g. make mutate MUTATEFLAGS=-run=kaslr
MUTATEFLAGS ?=

# Options for physmap-soak, e.g. make soak SOAKFLAGS='-n 50 -busy 4'
SOAKFLAGS ?=

.PHONY: all help mutate soak kernel modules programs qemu qemu-gdb map docs docs-check bench test test-unit test-boot vet cover tamago-note check-tamago check-qemu check-rsvg check-gcc check-linux linux test-linux clean

all: kernel

help: ## this list
	@awk -F':[^#]*## ' '/^[a-z][a-z-]*:[^#]*## / { printf "  make %-10s %s\n", $$1, $$2 }' $(firstword $(MAKEFILE_LIST))

kernel: $(ELF) ## build the kernel, build/physmap.elf

$(ELF): $(KERNEL_SRC) $(MODULE_OBJS) $(PROGRAM_ELFS) | check-tamago
	@mkdir -p $(BUILD)
	$(GOENV) $(TAMAGO) build $(GOFLAGS) -o $@ ./kernel

modules: $(MODULE_OBJS) ## compile the C modules the kernel embeds, kernel/modules/obj

# KBUILD_MODNAME is the file's stem, as Kbuild names a one-file module.
$(MODULE_OBJ)/%.o: $(MODULES_DIR)/%.c $(MODULES_INC)/physmap_module.h | check-gcc
	@mkdir -p $(MODULE_OBJ)
	$(MODULE_CC) $(MODULE_CFLAGS) -DKBUILD_MODNAME='"$*"' -c -o $@ $<

$(MODULE_OBJ)/%.o: $(MODULES_DIR)/%.S | check-gcc
	@mkdir -p $(MODULE_OBJ)
	$(MODULE_CC) $(MODULE_AFLAGS) -c -o $@ $<

programs: $(PROGRAM_ELFS) ## link the user programs the kernel runs as processes, kernel/programs/obj

$(PROGRAM_OBJ)/%.elf: $(PROGRAMS_DIR)/%.c | check-gcc
	@mkdir -p $(PROGRAM_OBJ)
	$(MODULE_CC) $(PROGRAM_CFLAGS) $(PROGRAM_LDFLAGS) -o $@ $<

# A cold build says what it is about to do: resolving the tool downloads the
# tamago module and builds the tool if needed, and the tool's first run
# clones tamago-go from GitHub and builds it, which takes minutes.
tamago-note:
	@if [ "$(origin TAMAGO)" = file ] && [ ! -x "$(TAMAGO_GOROOT)/bin/go" ]; then \
		echo 'make: first build: `go tool -n tamago` resolves the TamaGo tool (github.com/usbarmory/tamago $(TAMAGO_VERSION)),'; \
		echo '      whose first run clones usbarmory/tamago-go at tamago-go$(TAMAGO_VERSION:v%=%) from GitHub and builds it'; \
		echo '      into $(TAMAGO_GOROOT): a few minutes, once; or set TAMAGO=/path/to/tamago-go/bin/go'; fi

check-tamago: tamago-note
	@if [ -z "$(TAMAGO)" ]; then \
		echo 'make: no TamaGo compiler: `go tool -n tamago` failed (is Go installed, and go.mod intact?)'; \
		echo '      or set TAMAGO=/path/to/tamago-go/bin/go'; exit 1; fi

# QEMU comes from Debian's qemu-system-x86; as root it is installed here.
check-qemu:
	@command -v qemu-system-x86_64 >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo 'make: installing QEMU (apt-get install -y qemu-system-x86)'; \
			(apt-get install -y qemu-system-x86 || { apt-get update && apt-get install -y qemu-system-x86; }) >/dev/null; \
		else \
			echo 'make: QEMU is missing: run  sudo apt-get install -y qemu-system-x86'; exit 1; \
		fi; }

# rsvg-convert (Debian's librsvg2-bin) renders the picture to PNG, for make
# map and the picture's tests; as root it is installed here.
check-rsvg:
	@command -v rsvg-convert >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo 'make: installing rsvg-convert (apt-get install -y librsvg2-bin)'; \
			(apt-get install -y librsvg2-bin || { apt-get update && apt-get install -y librsvg2-bin; }) >/dev/null; \
		else \
			echo 'make: rsvg-convert is missing: run  sudo apt-get install -y librsvg2-bin'; exit 1; \
		fi; }

# gcc and binutils come from Debian; as root they are installed here.
check-gcc:
	@command -v $(MODULE_CC) >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo 'make: installing gcc (apt-get install -y gcc binutils)'; \
			(apt-get install -y gcc binutils || { apt-get update && apt-get install -y gcc binutils; }) >/dev/null; \
		else \
			echo 'make: gcc is missing: run  sudo apt-get install -y gcc binutils'; exit 2; \
		fi; }

# Debian's kernel and a static busybox, for the real-Linux comparison; as
# root they are installed here, as QEMU is.
LINUX_PKGS := linux-image-amd64 busybox-static
check-linux:
	@{ ls /boot/vmlinuz-* >/dev/null 2>&1 && [ -x /bin/busybox ]; } || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo 'make: installing Linux and busybox (apt-get install -y $(LINUX_PKGS))'; \
			(DEBIAN_FRONTEND=noninteractive apt-get install -y $(LINUX_PKGS) || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(LINUX_PKGS); }) >/dev/null; \
		else \
			echo 'make: Linux or busybox is missing: run  sudo apt-get install -y $(LINUX_PKGS)'; exit 2; \
		fi; }

# Options for physmap-linux, e.g. make linux LINUXFLAGS='-levels 4 -kaslr'
LINUXFLAGS ?=

linux: $(ELF) check-qemu check-linux ## boot Debian's Linux beside physmap and print both layouts side by side
	go run ./qemu/cmd/physmap-linux -physmap $(ELF) $(LINUXFLAGS)

# The comparison as a test: 5-level and 4-level with nokaslr, and KASLR;
# each fails on a fact that does not hold or an unexplained difference.
test-linux: $(ELF) check-qemu check-linux ## Linux beside physmap in 3 configurations, failing on an unexplained difference
	@for flags in "" "-levels 4" "-kaslr"; do \
		echo "make: physmap-linux $$flags"; \
		go run ./qemu/cmd/physmap-linux -physmap $(ELF) $$flags >/dev/null || exit 1; \
	done

qemu: $(ELF) check-qemu ## build and boot the kernel, the console on this terminal, ending at its shell
	go run ./qemu/cmd/physmap-run -interactive -kernel $(ELF) $(RUNFLAGS)

qemu-gdb: $(ELF) check-qemu ## boot it halted, waiting for gdb on 127.0.0.1:1234 (localhost only)
	@echo 'make: QEMU waits for gdb on 127.0.0.1:1234: gdb -ex "target remote 127.0.0.1:1234" $(ELF)'
	go run ./qemu/cmd/physmap-run -gdb -kernel $(ELF) $(RUNFLAGS)

map: $(ELF) check-qemu check-rsvg ## boot it and draw its live address space, build/physmap-map.svg and .png
	go run ./qemu/cmd/physmap-map -kernel $(ELF) -o $(BUILD)/physmap-map.svg -png $(BUILD)/physmap-map.png $(MAPFLAGS)

# The README's marked blocks (<!-- docs:NAME -->) and docs/physmap-map.svg,
# regenerated from one boot of each configuration the README shows.
docs: $(ELF) check-qemu ## rewrite the README's sample outputs, tables and picture from real boots
	go run ./qemu/cmd/physmap-docs -kernel $(ELF)

# Fails when README.md or docs/physmap-map.svg is not what make docs writes.
docs-check: $(ELF) check-qemu ## fail when the README is not what make docs writes (part of make test)
	go run ./qemu/cmd/physmap-docs -kernel $(ELF) -check

$(BASELINE): $(KERNEL_SRC) | check-tamago
	@mkdir -p $(BUILD)
	$(GOENV) $(TAMAGO) build $(GOFLAGS) -o $@ ./kernel/baseline

bench: $(ELF) $(BASELINE) check-qemu ## time physmap against a minimal TamaGo kernel, build/bench.json
	go run ./qemu/cmd/physmap-bench -kernel $(ELF) -baseline $(BASELINE) -o $(BUILD)/bench.json $(BENCHFLAGS)

# The mutation suite (qemu/cmd/physmap-mutate): minutes, so not part of make test.
mutate: check-tamago check-qemu ## apply each mutant of the checking code: every one must be killed
	go run ./qemu/cmd/physmap-mutate $(MUTATEFLAGS)

# A reliability benchmark, not a test: many boots with busy processes on
# the host (physmap-soak starts and stops them itself).
soak: $(ELF) check-qemu ## boot 300 times under host load, failures by check
	go run ./qemu/cmd/physmap-soak -kernel $(ELF) $(SOAKFLAGS)

test: test-unit test-boot test-linux docs-check ## host tests, the QEMU boot matrix under TCG, Linux beside physmap, the README's samples

# PHYSMAP_RSVG: the picture's render tests fail, rather than skip, without
# rsvg-convert.
test-unit: check-rsvg check-gcc ## go vet and go test on the host
	go vet ./...
	PHYSMAP_RSVG=required go test -cover ./...

test-boot: $(ELF) check-qemu ## the QEMU boot matrix only (qemu/cmd/physmap-test)
	go run ./qemu/cmd/physmap-test -kernel $(ELF)

# The kernel packages checked by vet as the TamaGo compiler sees them.
vet: $(MODULE_OBJS) $(PROGRAM_ELFS) | check-tamago ## go vet of the kernel packages as the TamaGo compiler sees them
	$(GOENV) $(TAMAGO) vet -tags $(BUILD_TAGS) ./kernel/... ./boot/... ./amd64/...

cover: ## mm's test coverage
	go test -coverprofile=$(BUILD)/cover.out ./mm/... && go tool cover -func=$(BUILD)/cover.out | tail -1

clean: ## remove build/, the compiled modules and the linked programs
	rm -rf $(BUILD) kernel/modules/obj kernel/programs/obj
