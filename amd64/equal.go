package amd64

func equalPage(a, b uint64) bool

// EqualPage reports whether the 4096 bytes at a and b are the same, both
// mapped and readable (the caller has probed them).
func EqualPage(a, b uint64) bool { return equalPage(a, b) }
