//go:build !noasm

#include "textflag.h"

// func adamAVX2(p, grad, m, v *float32, n int, h *adamScalars)
//
// For n a positive multiple of 8 it applies adamScalars.update to eight
// elements at a time with the same roundings: the two fused multiply-adds
// in float64 (the float32 products are exact there) rounded once to
// float32, everything else in float32. VSQRTPS is correctly rounded, as
// float32(math.Sqrt(float64(x))) is.
//
// Constants: Y8 β1, Y9 β2, Y10 1−β1 (float64), Y11 1−β2, Y12 √bc2,
// Y13 eps, Y14 step size.
TEXT ·adamAVX2(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), SI
	MOVQ grad+8(FP), DI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ h+40(FP), AX
	SHRQ $3, CX
	VBROADCASTSS 0(AX), Y14
	VBROADCASTSS 4(AX), Y12
	VBROADCASTSS 8(AX), Y8
	VBROADCASTSS 12(AX), Y9
	VBROADCASTSS 16(AX), X10
	VCVTPS2PD    X10, Y10
	VBROADCASTSS 20(AX), Y11
	VBROADCASTSS 24(AX), Y13

adamLoop:
	// m ← fma(g, 1−β1, float32(m·β1)), into Y4.
	VMOVUPS      (DI), Y0
	VMULPS       (R8), Y8, Y1
	VCVTPS2PD    X0, Y2
	VEXTRACTF128 $1, Y0, X3
	VCVTPS2PD    X3, Y3
	VCVTPS2PD    X1, Y4
	VEXTRACTF128 $1, Y1, X5
	VCVTPS2PD    X5, Y5
	VFMADD231PD  Y10, Y2, Y4
	VFMADD231PD  Y10, Y3, Y5
	VCVTPD2PSY   Y4, X4
	VCVTPD2PSY   Y5, X5
	VINSERTF128  $1, X5, Y4, Y4
	VMOVUPS      Y4, (R8)

	// v ← fma(float32((1−β2)·g), g, float32(v·β2)), into Y7.
	VMULPS       Y11, Y0, Y1
	VMULPS       (R9), Y9, Y0
	VCVTPS2PD    X1, Y5
	VEXTRACTF128 $1, Y1, X1
	VCVTPS2PD    X1, Y6
	VCVTPS2PD    X0, Y7
	VEXTRACTF128 $1, Y0, X0
	VCVTPS2PD    X0, Y15
	VFMADD231PD  Y2, Y5, Y7
	VFMADD231PD  Y3, Y6, Y15
	VCVTPD2PSY   Y7, X7
	VCVTPD2PSY   Y15, X15
	VINSERTF128  $1, X15, Y7, Y7
	VMOVUPS      Y7, (R9)

	// p ← p + float32(step·m)/(√v/√bc2 + eps).
	VSQRTPS Y7, Y7
	VDIVPS  Y12, Y7, Y7
	VADDPS  Y13, Y7, Y7
	VMULPS  Y14, Y4, Y4
	VDIVPS  Y7, Y4, Y4
	VADDPS  (SI), Y4, Y4
	VMOVUPS Y4, (SI)

	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, R9
	DECQ CX
	JNZ  adamLoop
	VZEROUPPER
	RET
