package audio

import (
	"encoding/binary"
	"math"
)

// Helpers that build WAV byte streams for the tests.

// wavFile returns a RIFF/WAVE file made of the given chunks, with a correct
// RIFF size.
func wavFile(chunks ...[]byte) []byte {
	var body []byte
	for _, c := range chunks {
		body = append(body, c...)
	}
	b := append([]byte("RIFF"), le32(uint32(4+len(body)))...)
	b = append(b, "WAVE"...)
	return append(b, body...)
}

// chunk returns a chunk with the true size of body, padded to even length.
func chunk(id string, body []byte) []byte {
	b := chunkSized(id, uint32(len(body)), body)
	if len(body)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

// chunkSized returns a chunk header declaring size, followed by body as is.
func chunkSized(id string, size uint32, body []byte) []byte {
	b := append([]byte(id), le32(size)...)
	return append(b, body...)
}

// fmtBody returns a 16-byte fmt chunk body with a consistent block align and
// byte rate.
func fmtBody(tag, channels uint16, rate uint32, bits uint16) []byte {
	align := channels * (bits / 8)
	b := append(le16(tag), le16(channels)...)
	b = append(b, le32(rate)...)
	b = append(b, le32(rate*uint32(align))...)
	b = append(b, le16(align)...)
	return append(b, le16(bits)...)
}

// fmtExtensible returns a 40-byte WAVE_FORMAT_EXTENSIBLE fmt chunk body
// whose sub-format GUID is derived from subTag.
func fmtExtensible(subTag, channels uint16, rate uint32, bits, validBits uint16) []byte {
	b := fmtBody(tagExtensible, channels, rate, bits)
	b = append(b, le16(22)...)
	b = append(b, le16(validBits)...)
	b = append(b, le32(0)...) // channel mask
	b = append(b, le16(subTag)...)
	return append(b, guidTail[:]...)
}

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// s16 encodes 16-bit samples.
func s16(v ...int16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint16(b, uint16(x))
	}
	return b
}

// s24 encodes 24-bit samples given as int32 values in [-2^23, 2^23).
func s24(v ...int32) []byte {
	var b []byte
	for _, x := range v {
		b = append(b, byte(x), byte(x>>8), byte(x>>16))
	}
	return b
}

// s32 encodes 32-bit integer samples.
func s32(v ...int32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return b
}

// f32 encodes 32-bit float samples.
func f32(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// f64 encodes 64-bit float samples.
func f64(v ...float64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

// pcm16File is a small valid mono 16-bit file with the given samples.
func pcm16File(rate uint32, v ...int16) []byte {
	return wavFile(chunk("fmt ", fmtBody(tagPCM, 1, rate, 16)), chunk("data", s16(v...)))
}
