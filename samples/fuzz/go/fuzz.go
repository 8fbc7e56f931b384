// A Go fuzz target for sandbox-fuzz, built as a C archive with Go's libFuzzer instrumentation
// (-gcflags=all=-d=libfuzzer) and linked with the guest driver. The Go runtime starts its
// threads in the archive's constructor, before the driver's point: the point is taken with
// every vCPU paused. Each input is checked on a goroutine of its own, which answers through a
// channel; a package-level count panics if an earlier input's state survived the reset, and an
// input that starts with "FUZZ" panics (the planted bug a fuzzer finds).
package main

import "C"
import "unsafe"

var inputs int

func check(b []byte, done chan<- bool) {
	done <- len(b) >= 4 && b[0] == 'F' && b[1] == 'U' && b[2] == 'Z' && b[3] == 'Z'
}

// LLVMFuzzerInitialize is the driver's first call into Go: an archive's Go code waits until the
// runtime's initialisation, which registers the coverage counters, has run, and that
// initialisation runs on a thread of its own. Without it the driver could reach its point
// before the counters are known.
//
//export LLVMFuzzerInitialize
func LLVMFuzzerInitialize(argc *C.int, argv ***C.char) C.int {
	return 0
}

//export LLVMFuzzerTestOneInput
func LLVMFuzzerTestOneInput(data *C.char, size C.size_t) C.int {
	inputs++
	if inputs != 1 {
		panic("an earlier input's state survived the reset")
	}
	b := C.GoBytes(unsafe.Pointer(data), C.int(size))
	done := make(chan bool)
	go check(b, done)
	if <-done {
		panic("planted bug: the input starts with FUZZ")
	}
	return 0
}

func main() {}
