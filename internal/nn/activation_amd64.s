//go:build !noasm

#include "textflag.h"

// CONST4 defines sym<> as the float64 (or 64-bit pattern) v repeated in
// the four lanes of a ymm register.
#define CONST4(sym, v) \
	DATA sym<>+0(SB)/8, v;  \
	DATA sym<>+8(SB)/8, v;  \
	DATA sym<>+16(SB)/8, v; \
	DATA sym<>+24(SB)/8, v; \
	GLOBL sym<>(SB), RODATA|NOPTR, $32

// Sign and magnitude masks.
CONST4(signbit, $0x8000000000000000)
CONST4(absmask, $0x7fffffffffffffff)

// expLo and expHi bound the arguments of the exponentials: e^−240 and
// e^100 are normal float64 values well outside float32's range.
CONST4(expLo, $-240.0)
CONST4(expHi, $100.0)

// −0 as a float32: the bias that leaves every value as it is.
DATA negzero<>+0(SB)/4, $0x80000000
GLOBL negzero<>(SB), RODATA|NOPTR, $4

CONST4(one, $1.0)
CONST4(two, $2.0)
CONST4(log2e, $1.4426950408889634)

// shifter is 1.5·2^52 + 1023: adding it rounds to an integer n and leaves
// n + 1023, the biased exponent of 2^n, in the low mantissa bits.
CONST4(shifter, $0x43380000000003ff)

// ln2hi + ln2lo = ln 2 (fdlibm's split; n·ln2hi is exact).
CONST4(ln2hi, $6.93147180369123816490e-01)
CONST4(ln2lo, $1.90821492927058770002e-10)

// Taylor coefficients 1/j! of e^r − 1 = r + r²·(c2 + c3·r + … + c10·r⁸).
// For |r| ≤ ln2/2 the first omitted term is below 7e−13 of the sum.
CONST4(c2, $0.5)
CONST4(c3, $0.16666666666666666)
CONST4(c4, $0.041666666666666664)
CONST4(c5, $8.333333333333333e-03)
CONST4(c6, $1.388888888888889e-03)
CONST4(c7, $1.984126984126984e-04)
CONST4(c8, $2.48015873015873e-05)
CONST4(c9, $2.7557319223985893e-06)
CONST4(c10, $2.755731922398589e-07)

// REDUCE splits v (float64 lanes, finite, in [−240, 100]) as v = n·ln2 + r
// with |r| ≤ ln2/2: s = 2^n and r replaces v. t is clobbered.
#define REDUCE(v, s, t) \
	VMOVUPD      shifter<>(SB), s;    \
	VFMADD231PD  log2e<>(SB), v, s;   \
	VSUBPD       shifter<>(SB), s, t; \
	VFNMADD231PD ln2hi<>(SB), t, v;   \
	VFNMADD231PD ln2lo<>(SB), t, v;   \
	VPSLLQ       $52, s, s

// EXPM1R sets p = e^r − 1 for the reduced argument r, by Estrin's scheme
// (a shorter dependency chain than Horner's): r2, u and w are clobbered.
#define EXPM1R(r, p, r2, u, w) \
	VMULPD      r, r, r2;        \
	VMOVUPD     c3<>(SB), p;     \
	VFMADD213PD c2<>(SB), r, p;  \
	VMOVUPD     c5<>(SB), u;     \
	VFMADD213PD c4<>(SB), r, u;  \
	VFMADD231PD u, r2, p;        \
	VMOVUPD     c7<>(SB), u;     \
	VFMADD213PD c6<>(SB), r, u;  \
	VMOVUPD     c9<>(SB), w;     \
	VFMADD213PD c8<>(SB), r, w;  \
	VFMADD231PD w, r2, u;        \
	VMULPD      r2, r2, w;       \
	VFMADD231PD c10<>(SB), w, u; \
	VFMADD231PD u, w, p;         \
	VFMADD213PD r, r2, p

// CLAMP sets v = max(v, −240), keeping NaN; t is clobbered.
#define CLAMP(v, t) \
	VMOVUPD expLo<>(SB), t; \
	VMAXPD  v, t, v

// LOAD4 sets the four float64 lanes of v to the float32 values at addr
// plus the bias in bias (float32 lanes), the sum rounded to float32.
#define LOAD4(addr, bias, v) \
	VADDPS    addr, bias, X6; \
	VCVTPS2PD X6, v

// EXPM1NEG sets p = e^v − 1 for v ≤ 0 (clamped to −240; NaN stays NaN);
// v, s, r2, u and w are clobbered.
#define EXPM1NEG(v, s, r2, p, u, w) \
	CLAMP(v, w);                 \
	REDUCE(v, s, w);             \
	EXPM1R(v, p, r2, u, w);      \
	VSUBPD      one<>(SB), s, w; \
	VFMADD213PD w, s, p

// EXPNEG sets p = e^v for v ≤ 0 (clamped to −240; NaN stays NaN); v, s,
// r2, u and w are clobbered.
#define EXPNEG(v, s, r2, p, u, w) \
	CLAMP(v, w);              \
	REDUCE(v, s, w);          \
	EXPM1R(v, p, r2, u, w);   \
	VFMADD213PD s, s, p

// GATEEXPS computes the exponentials of eight gated activations, x =
// (SI) + X14 and y = (DI) + X15 in two groups of four: m = e^(−2|x|) − 1
// into Y12 and Y13, e = e^(−|y|) into Y10 and Y11. Y0–Y9 are clobbered.
#define GATEEXPS \
	LOAD4((SI), X14, Y0);              \
	LOAD4(16(SI), X14, Y1);            \
	VORPD  signbit<>(SB), Y0, Y0;      \
	VADDPD Y0, Y0, Y0;                 \
	VORPD  signbit<>(SB), Y1, Y1;      \
	VADDPD Y1, Y1, Y1;                 \
	EXPM1NEG(Y0, Y2, Y4, Y12, Y8, Y10); \
	EXPM1NEG(Y1, Y3, Y5, Y13, Y9, Y11); \
	LOAD4((DI), X15, Y0);              \
	LOAD4(16(DI), X15, Y1);            \
	VORPD  signbit<>(SB), Y0, Y0;      \
	VORPD  signbit<>(SB), Y1, Y1;      \
	EXPNEG(Y0, Y2, Y4, Y10, Y8, Y6);   \
	EXPNEG(Y1, Y3, Y5, Y11, Y9, Y7)

// SIGNOF gives Y12 and Y13 the signs of the eight values x = (SI) + X14,
// keeping their magnitudes; Y4 and Y5 are clobbered.
#define SIGNOF \
	LOAD4((SI), X14, Y4);          \
	LOAD4(16(SI), X14, Y5);        \
	VANDPD signbit<>(SB), Y4, Y4;  \
	VANDPD signbit<>(SB), Y5, Y5;  \
	VANDPD absmask<>(SB), Y12, Y12; \
	VANDPD absmask<>(SB), Y13, Y13; \
	VORPD  Y4, Y12, Y12;           \
	VORPD  Y5, Y13, Y13

// func gatedAVX2(dst, filter, gate *float32, n int, fb, gb float32)
//
// For n a positive multiple of 8 it sets, in float64 rounded once,
//
//	dst[i] = tanh(x)·σ(y),  x = filter[i] + fb,  y = gate[i] + gb,
//
// as sign(x)·(−m)·u / ((2 + m)·(1 + e)) with m = e^(−2|x|) − 1 (tanh|x| =
// −m/(2+m), no cancellation near 0), e = e^(−|y|) and u = 1 for y ≥ 0 or e
// for y < 0 (σ(y) = u/(1+e)): one division, no overflow. Two groups of
// four are interleaved; inputs are reloaded rather than kept in
// registers.
TEXT ·gatedAVX2(SB), NOSPLIT, $0-40
	MOVQ         dst+0(FP), DX
	MOVQ         filter+8(FP), SI
	MOVQ         gate+16(FP), DI
	MOVQ         n+24(FP), CX
	SHRQ         $3, CX
	VBROADCASTSS fb+32(FP), X14
	VBROADCASTSS gb+36(FP), X15

gatedLoop:
	GATEEXPS

	// dst = sign(x)·|m·u / ((2 + m)·(1 + e))|.
	VADDPD      two<>(SB), Y12, Y0
	VADDPD      two<>(SB), Y13, Y1
	VADDPD      one<>(SB), Y10, Y2
	VADDPD      one<>(SB), Y11, Y3
	VMULPD      Y2, Y0, Y0
	VMULPD      Y3, Y1, Y1
	LOAD4((DI), X15, Y4)
	LOAD4(16(DI), X15, Y5)
	VMOVUPD     one<>(SB), Y2
	VMOVUPD     one<>(SB), Y3
	VBLENDVPD   Y4, Y10, Y2, Y2
	VBLENDVPD   Y5, Y11, Y3, Y3
	VMULPD      Y2, Y12, Y12
	VMULPD      Y3, Y13, Y13
	VDIVPD      Y0, Y12, Y12
	VDIVPD      Y1, Y13, Y13
	SIGNOF
	VCVTPD2PSY  Y12, X12
	VCVTPD2PSY  Y13, X13
	VMOVUPS     X12, (DX)
	VMOVUPS     X13, 16(DX)
	ADDQ        $32, SI
	ADDQ        $32, DI
	ADDQ        $32, DX
	DECQ        CX
	JNZ         gatedLoop
	VZEROUPPER
	RET

// EXP4 sets the four float64 lanes of v to e^v, for v clamped to
// [−240, 100]; s, r2, p, u and w are clobbered.
#define EXP4(v, s, r2, p, u, w) \
	VMINPD      v, Y15, v;  \
	VMAXPD      v, Y14, v;  \
	REDUCE(v, s, w);        \
	EXPM1R(v, p, r2, u, w); \
	VFMADD213PD s, s, p

// func expAVX2(dst, src *float32, n int)
//
// For n a positive multiple of 8 it sets dst[i] = e^src[i], in float64
// rounded once, as 2^n·(1 + (e^r − 1)). Two groups of four are
// interleaved.
TEXT ·expAVX2(SB), NOSPLIT, $0-24
	MOVQ    dst+0(FP), DX
	MOVQ    src+8(FP), SI
	MOVQ    n+16(FP), CX
	SHRQ    $3, CX
	VMOVUPD expLo<>(SB), Y14
	VMOVUPD expHi<>(SB), Y15

expLoop:
	VCVTPS2PD  (SI), Y0
	VCVTPS2PD  16(SI), Y1
	EXP4(Y0, Y2, Y4, Y6, Y8, Y10)
	EXP4(Y1, Y3, Y5, Y7, Y9, Y11)
	VCVTPD2PSY Y6, X6
	VCVTPD2PSY Y7, X7
	VMOVUPS    X6, (DX)
	VMOVUPS    X7, 16(DX)
	ADDQ       $32, SI
	ADDQ       $32, DX
	DECQ       CX
	JNZ        expLoop
	VZEROUPPER
	RET

// func tanhSigmoidAVX2(t, s, a, filter, gate *float32, n int)
//
// For n a positive multiple of 8 it sets, each in float64 rounded once,
// t[i] = tanh(x) = sign(x)·|m/(2 + m)| with m = e^(−2|x|) − 1, and
// s[i] = σ(y) = u/(1 + e) with e = e^(−|y|), u = 1 for y ≥ 0 or e for
// y < 0, x = filter[i], y = gate[i]; then a[i] = t[i]·s[i] in float32.
// Two groups of four are interleaved, as in gatedAVX2.
TEXT ·tanhSigmoidAVX2(SB), NOSPLIT, $0-48
	MOVQ t+0(FP), DX
	MOVQ s+8(FP), R8
	MOVQ a+16(FP), R9
	MOVQ filter+24(FP), SI
	MOVQ gate+32(FP), DI
	MOVQ n+40(FP), CX
	SHRQ $3, CX
	// Biases of −0, which leave every value as it is (−0 + −0 = −0).
	VBROADCASTSS negzero<>(SB), X14
	VMOVAPS      X14, X15

tanhSigmoidLoop:
	GATEEXPS

	// t = sign(x)·|m/(2 + m)|, into X12 and X13.
	VADDPD     two<>(SB), Y12, Y0
	VADDPD     two<>(SB), Y13, Y1
	VDIVPD     Y0, Y12, Y12
	VDIVPD     Y1, Y13, Y13
	SIGNOF
	VCVTPD2PSY Y12, X12
	VCVTPD2PSY Y13, X13

	// s = u/(1 + e), into X0 and X1.
	VADDPD     one<>(SB), Y10, Y2
	VADDPD     one<>(SB), Y11, Y3
	LOAD4((DI), X15, Y4)
	LOAD4(16(DI), X15, Y5)
	VMOVUPD    one<>(SB), Y0
	VMOVUPD    one<>(SB), Y1
	VBLENDVPD  Y4, Y10, Y0, Y0
	VBLENDVPD  Y5, Y11, Y1, Y1
	VDIVPD     Y2, Y0, Y0
	VDIVPD     Y3, Y1, Y1
	VCVTPD2PSY Y0, X0
	VCVTPD2PSY Y1, X1

	VMOVUPS X12, (DX)
	VMOVUPS X13, 16(DX)
	VMOVUPS X0, (R8)
	VMOVUPS X1, 16(R8)
	VMULPS  X0, X12, X0
	VMULPS  X1, X13, X1
	VMOVUPS X0, (R9)
	VMOVUPS X1, 16(R9)
	ADDQ    $32, SI
	ADDQ    $32, DI
	ADDQ    $32, DX
	ADDQ    $32, R8
	ADDQ    $32, R9
	DECQ    CX
	JNZ     tanhSigmoidLoop
	VZEROUPPER
	RET
