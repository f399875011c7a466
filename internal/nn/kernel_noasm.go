//go:build noasm || !amd64

package nn

// gemmKernel is the micro-kernel Gemm uses.
var gemmKernel = portableKernel
