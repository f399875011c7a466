// Package torchfile reads PyTorch .pt files without Python: WaveGlow
// checkpoints (the pickled module of NVIDIA's train.py, with its Adam state),
// state dicts and single saved tensors such as Tacotron2 mel spectrograms.
//
// Both container formats of torch.save are supported: the zip archive of
// PyTorch >= 1.6 (<dir>/data.pkl plus one record per storage) and the legacy
// format (a sequence of pickles followed by the raw storages), with storages
// saved on the CPU or on a GPU. Tensors are returned as contiguous float32
// whatever their stored dtype, strides or storage offset.
//
// # Security
//
// A pickle is a program. This package never runs one: before gopickle
// executes a pickle, a validator checks every opcode, length and stack
// effect, and the only Python globals it may reference are an allow-list of
// tensor rebuild functions, storage classes, OrderedDict, set, torch.Size
// and module classes of NVIDIA's glow.py and of torch.nn. Module classes are
// instantiated as inert attribute holders. Any other global (os.system,
// builtins.eval, ...) fails with ErrForbiddenGlobal naming it.
//
// Declared sizes are checked against the bytes actually present before
// anything is allocated for them, and resource limits bound what a hostile
// file can cost: a pickle of at most 64 MiB and 2^21 opcodes, bounded
// nesting, and tensor memory of at most 16 times the file size plus 16 MiB.
// Violations fail with ErrLimit; malformed or unsupported files with
// ErrFormat.
package torchfile
