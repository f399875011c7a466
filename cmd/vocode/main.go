// Command vocode turns mel spectrograms into speech with a WaveGlow
// vocoder, and back.
//
// Usage:
//
//	vocode <command> [flags] [arguments]
//
// The commands are:
//
//	mel      compute log-mel spectrograms of audio (Tacotron2 front end)
//	synth    synthesise speech from mel spectrograms
//	resynth  analyse audio with the model's front end and synthesise it again
//	score    print the exact log-likelihood of audio under the model as JSON
//	denoise  remove the model's constant bias hiss from audio
//	convert  convert an NVIDIA checkpoint or state dict to a self-describing .safetensors model
//	info     print a model's configuration as JSON
//	train    train a model on a speech corpus, or continue training one
//	bench    measure synthesis speed on this machine
//	help     print the usage of vocode or of one command
//
// Flags may come before or after the arguments; "--" ends the flags.
// Run "vocode help <command>" for the flags of a command.
//
// Audio inputs are WAV files or float32 .npy arrays of samples ([N] or
// [1, N]); WAV inputs must be at the sample rate the model (or, for mel,
// --sample-rate) expects. Audio outputs ending in .wav are 16-bit PCM at
// the model's sample rate, outputs ending in .npy are the float32 samples,
// unclipped. Every output is written atomically: an interrupted or failed
// run leaves no partial file behind.
//
// The commands that take several inputs (mel, synth, resynth, denoise)
// write them to --out-dir, each named after its input with the new
// extension. A failing input is reported and the others are still
// processed; the exit status is then 1.
//
// Exit status: 0 on success, 1 on runtime errors, 2 on usage errors.
// An interrupt (Ctrl-C) cancels the work in progress.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
