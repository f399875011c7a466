package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/schollz/progressbar/v3"
)

// outputFlags choose where a command writes its results: -o names the
// output of a single input, --out-dir holds the outputs of any number of
// inputs, each named after its input with the output extension.
type outputFlags struct {
	out, dir, format string
	// formats are the accepted output extensions without the dot; the
	// first is the default with --out-dir.
	formats []string
}

// register defines -o, --out-dir and, if there is more than one format,
// --format on fs.
func (o *outputFlags) register(fs *flag.FlagSet, formats ...string) {
	o.formats = formats
	exts := "." + strings.Join(formats, " or .")
	fs.StringVar(&o.out, "o", "", "output `file` for a single input ("+exts+")")
	fs.StringVar(&o.dir, "out-dir", "", "output `directory` (created if missing) for any number of inputs; each output is named after its input with the output extension")
	if len(formats) > 1 {
		fs.StringVar(&o.format, "format", "", "output `format` with --out-dir: "+strings.Join(formats, " or ")+" (default "+formats[0]+"); with -o the extension decides")
	}
}

// A job is one input and the output it becomes.
type job struct{ in, out string }

// A batch is the work of one command run.
type batch struct {
	jobs []job
	dir  string // the output directory to create, or ""
}

// plan maps inputs to output paths, checking the command line: exactly one
// of -o and --out-dir, -o only with one input and with a known extension,
// and no two outputs of --out-dir on the same path or on an input.
func (o *outputFlags) plan(inputs []string) (batch, error) {
	if o.format != "" && !slices.Contains(o.formats, o.format) {
		return batch{}, usagef("unknown --format %q (want %s)", o.format, strings.Join(o.formats, " or "))
	}
	switch {
	case len(inputs) == 0:
		return batch{}, usagef("no input files")
	case o.out != "" && o.dir != "":
		return batch{}, usagef("-o and --out-dir are mutually exclusive")
	case o.out == "" && o.dir == "":
		return batch{}, usagef("an output is required: -o FILE for one input or --out-dir DIR")
	case o.out != "":
		if len(inputs) > 1 {
			return batch{}, usagef("-o takes a single input, got %d: use --out-dir for several", len(inputs))
		}
		ext := strings.TrimPrefix(strings.ToLower(filepath.Ext(o.out)), ".")
		if !slices.Contains(o.formats, ext) {
			return batch{}, usagef("output %s: unsupported extension (want .%s)", o.out, strings.Join(o.formats, " or ."))
		}
		if o.format != "" && o.format != ext {
			return batch{}, usagef("--format %s contradicts the extension of -o %s", o.format, o.out)
		}
		return batch{jobs: []job{{in: inputs[0], out: o.out}}}, nil
	}
	format := o.format
	if format == "" {
		format = o.formats[0]
	}
	b := batch{dir: o.dir}
	from := make(map[string]string, len(inputs)) // output path → input
	for _, in := range inputs {
		base := filepath.Base(in)
		out := filepath.Join(o.dir, strings.TrimSuffix(base, filepath.Ext(base))+"."+format)
		if prev, ok := from[out]; ok {
			return batch{}, usagef("inputs %s and %s would both be written to %s", prev, in, out)
		}
		if samePath(in, out) {
			return batch{}, usagef("output %s would overwrite its input", out)
		}
		from[out] = in
		b.jobs = append(b.jobs, job{in: in, out: out})
	}
	return b, nil
}

// samePath reports whether a and b name the same file.
func samePath(a, b string) bool {
	if sa, err := os.Stat(a); err == nil {
		if sb, err := os.Stat(b); err == nil {
			return os.SameFile(sa, sb)
		}
	}
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}

// runBatch runs do on every job of b, with a progress bar on a terminal
// when there are several. The errors of do must name the file they concern.
// A failing job is reported on stderr and the others still run; the result
// is then an error counting the failures. A cancelled ctx stops the batch.
func runBatch(ctx context.Context, e *env, b batch, do func(ctx context.Context, j job) error) error {
	if b.dir != "" {
		if err := os.MkdirAll(b.dir, 0o755); err != nil {
			return fmt.Errorf("output directory: %w", err)
		}
	}
	if len(b.jobs) == 1 {
		return do(ctx, b.jobs[0])
	}
	var bar *progressbar.ProgressBar
	if e.progress {
		bar = progressbar.NewOptions(len(b.jobs),
			progressbar.OptionSetWriter(e.stderr),
			progressbar.OptionSetDescription(e.cmd),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionClearOnFinish(),
		)
	}
	failed := 0
	for _, j := range b.jobs {
		err := do(ctx, j)
		if ctx.Err() != nil {
			if bar != nil {
				_ = bar.Clear() // only cosmetic
			}
			return ctx.Err()
		}
		if err != nil {
			failed++
			if bar != nil {
				_ = bar.Clear() // only cosmetic: the bar redraws on Add
			}
			e.warnf("%v", err)
		}
		if bar != nil {
			_ = bar.Add(1) // only cosmetic
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d inputs failed", failed, len(b.jobs))
	}
	return nil
}
