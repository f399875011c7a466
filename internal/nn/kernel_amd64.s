//go:build !noasm

#include "textflag.h"

// STEP4x24 is one rank-1 update of the 4×24 tile held in Y4–Y15: the 24
// values of B at (DI) times the four values of A at off(SI). DI then moves
// to the next row of B.
#define STEP4x24(off) \
	VMOVUPS      (DI), Y0;          \
	VMOVUPS      32(DI), Y1;        \
	VMOVUPS      64(DI), Y2;        \
	ADDQ         R8, DI;            \
	VBROADCASTSS off(SI), Y3;       \
	VFMADD231PS  Y0, Y3, Y4;        \
	VFMADD231PS  Y1, Y3, Y5;        \
	VFMADD231PS  Y2, Y3, Y6;        \
	VBROADCASTSS off+4(SI), Y3;     \
	VFMADD231PS  Y0, Y3, Y7;        \
	VFMADD231PS  Y1, Y3, Y8;        \
	VFMADD231PS  Y2, Y3, Y9;        \
	VBROADCASTSS off+8(SI), Y3;     \
	VFMADD231PS  Y0, Y3, Y10;       \
	VFMADD231PS  Y1, Y3, Y11;       \
	VFMADD231PS  Y2, Y3, Y12;       \
	VBROADCASTSS off+12(SI), Y3;    \
	VFMADD231PS  Y0, Y3, Y13;       \
	VFMADD231PS  Y1, Y3, Y14;       \
	VFMADD231PS  Y2, Y3, Y15

// func strip4x24AVX2(k, tiles int, a, b *float32, ldb int, c *float32, ldc int, next *float32, ldn int, accumulate bool)
//
// The 4×24 tile of C lives in Y4–Y15 (row i in Y(4+3i)–Y(6+3i)); each
// step loads a row of B into Y0–Y2 and broadcasts A's four values through
// Y3: 12 FMAs per 7 loads, enough for Zen's two FMA pipes. While a tile
// computes, the kernel prefetches the next tile of C (when k ≥ 32, so the
// prefetches pay off) and, one row per four steps, the k rows of the next
// micro-panel of B at next (row stride ldn), unless next is nil.
//
// Registers: SI walks A, DI walks B, DX is the tile of C, CX counts steps,
// R10 tiles, R8/R9 are the strides of B and C in bytes, R11 holds
// accumulate, R13/AX/R14 track the prefetch of next, R12 is scratch.
TEXT ·strip4x24AVX2(SB), NOSPLIT, $0-73
	MOVQ    tiles+8(FP), R10
	MOVQ    a+16(FP), SI
	MOVQ    ldb+32(FP), R8
	SHLQ    $2, R8
	MOVQ    c+40(FP), DX
	MOVQ    ldc+48(FP), R9
	SHLQ    $2, R9
	MOVQ    next+56(FP), R13
	MOVQ    ldn+64(FP), AX
	SHLQ    $2, AX
	XORQ    R14, R14             // rows of next left to prefetch: k, or 0
	TESTQ   R13, R13
	CMOVQNE k+0(FP), R14
	MOVBLZX accumulate+72(FP), R11

tile4x24:
	CMPQ       k+0(FP), $32
	JL         noprefetch4x24
	LEAQ       (DX)(R9*4), R12
	PREFETCHT0 (R12)
	PREFETCHT0 64(R12)
	PREFETCHT0 92(R12)
	PREFETCHT0 (R12)(R9*1)
	PREFETCHT0 64(R12)(R9*1)
	PREFETCHT0 92(R12)(R9*1)
	LEAQ       (R12)(R9*2), R12
	PREFETCHT0 (R12)
	PREFETCHT0 64(R12)
	PREFETCHT0 92(R12)
	PREFETCHT0 (R12)(R9*1)
	PREFETCHT0 64(R12)(R9*1)
	PREFETCHT0 92(R12)(R9*1)

noprefetch4x24:
	MOVQ       b+24(FP), DI
	MOVQ       k+0(FP), CX
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15
	CMPQ   CX, $4
	JL     tail4x24

loop4x24:
	STEP4x24(0)
	STEP4x24(16)
	STEP4x24(32)
	STEP4x24(48)
	ADDQ $64, SI
	TESTQ R14, R14
	JZ    nopf4x24
	PREFETCHT0 (R13)
	PREFETCHT0 64(R13)
	PREFETCHT0 92(R13)
	ADDQ  AX, R13
	DECQ  R14

nopf4x24:
	SUBQ $4, CX
	CMPQ CX, $4
	JGE  loop4x24
	TESTQ CX, CX
	JZ   store4x24

tail4x24:
	STEP4x24(0)
	ADDQ $16, SI
	DECQ CX
	JNZ  tail4x24

store4x24:
	LEAQ  (DX)(R9*2), R12        // R12 = row 2 of the tile
	TESTQ R11, R11
	JZ    write4x24
	VADDPS (DX), Y4, Y4
	VADDPS 32(DX), Y5, Y5
	VADDPS 64(DX), Y6, Y6
	VADDPS (DX)(R9*1), Y7, Y7
	VADDPS 32(DX)(R9*1), Y8, Y8
	VADDPS 64(DX)(R9*1), Y9, Y9
	VADDPS (R12), Y10, Y10
	VADDPS 32(R12), Y11, Y11
	VADDPS 64(R12), Y12, Y12
	VADDPS (R12)(R9*1), Y13, Y13
	VADDPS 32(R12)(R9*1), Y14, Y14
	VADDPS 64(R12)(R9*1), Y15, Y15

write4x24:
	VMOVUPS Y4, (DX)
	VMOVUPS Y5, 32(DX)
	VMOVUPS Y6, 64(DX)
	VMOVUPS Y7, (DX)(R9*1)
	VMOVUPS Y8, 32(DX)(R9*1)
	VMOVUPS Y9, 64(DX)(R9*1)
	VMOVUPS Y10, (R12)
	VMOVUPS Y11, 32(R12)
	VMOVUPS Y12, 64(R12)
	VMOVUPS Y13, (R12)(R9*1)
	VMOVUPS Y14, 32(R12)(R9*1)
	VMOVUPS Y15, 64(R12)(R9*1)
	LEAQ    (DX)(R9*4), DX
	DECQ    R10
	JNZ     tile4x24
	VZEROUPPER
	RET
