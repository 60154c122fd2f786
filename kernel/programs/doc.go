// Package programs holds the user programs the kernel runs as processes:
// C sources in c/, linked by make programs into static executables in
// obj/ (the Makefile's PROGRAM_CFLAGS and PROGRAM_LDFLAGS say how and
// why), embedded in the kernel. probe.c is the one physmap runs twice.
package programs
