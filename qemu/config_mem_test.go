package qemu

import (
	"strings"
	"testing"
)

// TestCommandSharedMemory covers the options physmap-linux uses: an initrd
// and guest RAM in a file shared with the host.
func TestCommandSharedMemory(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"initrd", Config{Kernel: "vmlinuz", Memory: "2G", Initrd: "initrd.cpio"}, []string{"-kernel vmlinuz -initrd initrd.cpio"}},
		{"shared file", Config{Kernel: "k", Memory: "2G", MemPath: "/dev/shm/g"}, []string{
			"rtc=on,memory-backend=physmap.ram ",
			" -object memory-backend-file,id=physmap.ram,size=2G,mem-path=/dev/shm/g,share=on",
		}},
		{"shared file, comma escaped, no reserve", Config{Kernel: "k", Memory: "4G", MemPath: "/dev/shm/a,b", NoReserve: true}, []string{
			"mem-path=/dev/shm/a,,b,share=on,reserve=off",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv, err := tc.cfg.Command()
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(argv, " ")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("Command() = %s\nwant it to contain %q", got, w)
				}
			}
			if n := strings.Count(got, "-object"); n > 1 {
				t.Errorf("Command() has %d memory backends: %s", n, got)
			}
		})
	}
}
