// Package audio reads and writes WAV files for the vocoder.
//
// Decode and DecodeFile accept RIFF/WAVE files holding 8-bit unsigned,
// 16-, 24- or 32-bit signed integer PCM, or 32- or 64-bit IEEE float samples,
// with a plain (WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT) or a
// WAVE_FORMAT_EXTENSIBLE fmt chunk. They return a mono Clip: several channels
// are mixed down by averaging them. Integer samples are normalised exactly:
// a 16-bit value v becomes float32(v)/32768, the convention of the reference
// WaveGlow and Tacotron2 code (24-bit values are divided by 2^23, 32-bit
// ones by 2^31, 8-bit ones are (v-128)/128).
//
// Encode writes a whole file with exact sizes, WriteFile does the same
// atomically on disk, and StreamWriter writes a file of unknown length to a
// plain io.Writer such as an http.ResponseWriter. Samples are written as
// 16-bit PCM (value·32768 rounded half to even and clipped to
// [-32768, 32767], so that decoding gives back float32(int16)/32768
// bit for bit) or as 32-bit IEEE float.
//
// The package parses and writes the RIFF structure itself instead of using
// github.com/go-audio/wav (v1.1.0) and github.com/go-audio/riff. Their
// decoder needs an io.ReadSeeker, silently returns no samples for a data
// chunk of unknown size 0xFFFFFFFF (the size is rounded up to even in a
// uint32 and wraps to 0), allocates whatever size a fmt chunk declares
// (4 GiB for a 44-byte hostile header), ignores the chunk-size read error,
// ignores short reads, and has no WAVE_FORMAT_EXTENSIBLE support; it returns
// float samples as raw bit patterns in an []int. Their encoder needs an
// io.WriteSeeker and cannot write the streaming header. Doing it here is
// about as much code as working around all of that.
package audio
