package amd64

func equal3Page(a, b, c uint64) uint8

// Equal3Page compares the 4096 bytes at b and at c with those at a, all
// three mapped and readable (the caller has probed them), reading each
// once: 0 if both are the same as a, 1 if b differs (c unread past it),
// else 2.
func Equal3Page(a, b, c uint64) int { return int(equal3Page(a, b, c)) }
