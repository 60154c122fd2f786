//go:build tamago

package modules

import (
	"embed"
	"io/fs"
	"path"
	"strings"
)

// objs are the modules as make modules compiled them; the kernel's build
// target depends on them, so they exist whenever the kernel builds.
//
//go:embed obj/*.o
var objs embed.FS

// Object is one embedded module object.
type Object struct {
	File string // its file name, e.g. reloc.o
	Data []byte
}

// Objects returns the embedded objects in file-name order; the loader
// orders them by their dependencies (modload.LoadOrder).
func Objects() []Object {
	files, _ := fs.Glob(objs, "obj/*.o") // the pattern is well-formed
	out := make([]Object, 0, len(files))
	for _, f := range files {
		data, _ := objs.ReadFile(f) // an embedded file reads
		out = append(out, Object{File: strings.TrimPrefix(f, path.Dir(f)+"/"), Data: data})
	}
	return out
}
