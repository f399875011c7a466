package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glowvoc/glowvoc/audio"
	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/train/corpus"
)

// Files a session writes into its directory besides the checkpoints.
const (
	// LogName is the JSONL log of every iteration (one Record per line).
	LogName = "train.jsonl"
	// PlotName is the loss-curve figure, redrawn at every checkpoint.
	PlotName = "loss.png"
)

// prefetchDepth is how many batches are loaded ahead of training.
const prefetchDepth = 2

// Session is a training run in progress: a model, its optimizer and the
// position in the training data, advanced by Train and checkpointed into
// a directory (see SaveCheckpoint), with a log of every iteration
// (LogName) and a loss curve (PlotName) beside the checkpoints.
//
// Everything a run's future depends on is in its checkpoints: the
// weights, Adam's moments and step count, the iteration (which fixes the
// learning rate) and the loader position (which fixes the data, see
// corpus.Loader). A session resumed from a checkpoint therefore takes
// exactly the steps, bit for bit, that the original would have taken
// after writing it, given the same RunConfig.Workers.
//
// A Session is not safe for concurrent use.
type Session struct {
	// Logf, if not nil, receives messages about the run: skipped steps
	// and checkpoints written.
	Logf func(format string, args ...any)
	// OnStep, if not nil, is called with the record of every iteration
	// once it is logged.
	OnStep func(Record)

	dir      string
	trainer  *Trainer // its Model is the session's model
	run      RunConfig
	iter     int64
	pos      corpus.Position
	loader   *corpus.Loader
	valFiles []string
	val      [][]float32
	history  []Record
	log      *os.File
	saved    int64 // the iteration whose state is on disk
}

// NewSession prepares to continue the run c in the checkpoint directory
// dir (created if missing): it lists the training and validation files,
// loads the validation clips and reads the log of earlier iterations
// from dir, dropping records after c's iteration (left by a run that went
// on past its last checkpoint). A run that has not started (iteration 0)
// may not use a directory that already holds checkpoints. The session
// takes over c's model and optimizer. Close it when done.
func NewSession(c *Checkpoint, dir string) (*Session, error) {
	s, err := newSession(c, dir)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return s, nil
}

func newSession(c *Checkpoint, dir string) (*Session, error) {
	cfg, run := c.Model.Config(), c.Run
	if err := run.Validate(cfg); err != nil {
		return nil, err
	}
	if run.TrainFiles == "" {
		return nil, errors.New("no training files")
	}
	files, err := corpus.List(run.TrainFiles)
	if err != nil {
		return nil, err
	}
	an, err := melspec.NewAnalyzer(cfg.Mel)
	if err != nil {
		return nil, err
	}
	loader, err := corpus.NewLoader(files, an, corpus.Options{
		BatchSize: run.BatchSize, SegmentLength: run.SegmentLength, Seed: run.Seed, Shuffle: run.Shuffle,
	})
	if err != nil {
		return nil, fmt.Errorf("training files %s: %w", run.TrainFiles, err)
	}
	s := &Session{dir: dir, run: run, iter: c.Iteration, pos: c.Position, loader: loader, saved: c.Iteration}
	if run.ValFiles != "" {
		if s.valFiles, err = corpus.List(run.ValFiles); err != nil {
			return nil, err
		}
		if s.val, err = loadClips(s.valFiles, cfg.Mel); err != nil {
			return nil, fmt.Errorf("validation files: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if c.Iteration == 0 {
		if has, err := hasCheckpoints(dir); err != nil {
			return nil, err
		} else if has {
			return nil, fmt.Errorf("%s already holds the checkpoints of a run: resume it, or train into another directory", dir)
		}
	}
	logPath := filepath.Join(dir, LogName)
	var dropped bool
	if s.history, dropped, err = readLog(logPath, c.Iteration); err != nil {
		return nil, err
	}
	if dropped {
		if err := writeLog(logPath, s.history); err != nil {
			return nil, err
		}
	}
	if s.log, err = os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
		return nil, err
	}
	c.Model.SetOptions(Options{Recompute: run.Recompute, Workers: run.Workers})
	opt := c.Optimizer
	if opt == nil {
		opt = NewAdam(c.Model.Params(), run.LearningRate)
	}
	s.trainer = &Trainer{Model: c.Model, Optimizer: opt, Sigma: run.Sigma}
	return s, nil
}

// loadClips decodes the validation clips, which must be at the front
// end's sample rate and long enough for a mel spectrogram.
func loadClips(files []string, mel melspec.Config) ([][]float32, error) {
	clips := make([][]float32, len(files))
	for i, f := range files {
		c, err := audio.DecodeFile(f)
		if err != nil {
			return nil, err
		}
		if c.SampleRate != mel.SampleRate {
			return nil, fmt.Errorf("%s: sample rate %d Hz, the model's is %d Hz", f, c.SampleRate, mel.SampleRate)
		}
		if len(c.Samples) <= mel.NFFT/2 {
			return nil, fmt.Errorf("%s: %d samples are too short (need more than %d)", f, len(c.Samples), mel.NFFT/2)
		}
		clips[i] = c.Samples
	}
	return clips, nil
}

// Iteration returns the number of iterations completed.
func (s *Session) Iteration() int64 { return s.iter }

// Close closes the session's log.
func (s *Session) Close() error { return s.log.Close() }

// logf passes a message to Logf.
func (s *Session) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// Train takes steps iterations (any number if steps < 0), fewer if the
// run's epoch limit comes first. Every RunConfig.CheckpointEvery
// iterations it writes a checkpoint, and every ValEvery it computes the
// validation NLL. When it returns, for whatever reason (done, ctx
// cancelled, a file failing to load), the state after the last completed
// iteration has been checkpointed.
//
// A step whose loss or gradient is not finite changes nothing, is logged
// with its files and counts as an iteration; any other failure of a step
// ends training with an error that names the batch's files.
func (s *Session) Train(ctx context.Context, steps int64) error {
	s.loader.Seek(s.pos)
	loadCtx, cancel := context.WithCancel(ctx)
	batches := corpus.Prefetch(loadCtx, s.loader, prefetchDepth)
	err := s.loop(ctx, batches, steps)
	cancel()
	for range batches { // wait for the loader to stop
	}
	if s.iter != s.saved {
		if _, serr := s.Save(); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	return err
}

// loop runs the iterations of Train.
func (s *Session) loop(ctx context.Context, batches <-chan corpus.Result, steps int64) error {
	for n := int64(0); steps < 0 || n < steps; n++ {
		var res corpus.Result
		var ok bool
		select {
		case res, ok = <-batches:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !ok {
			return errors.New("training data loader stopped")
		}
		if res.Err != nil {
			return fmt.Errorf("training data: %w", res.Err)
		}
		if s.run.Epochs > 0 && res.Batch.Next.Epoch >= s.run.Epochs {
			s.logf("all %d epochs done", s.run.Epochs)
			return nil
		}
		if err := s.step(ctx, res.Batch); err != nil {
			return err
		}
	}
	return nil
}

// step takes one training step on b, logs it and checkpoints if due.
func (s *Session) step(ctx context.Context, b corpus.Batch) error {
	lr := s.run.Schedule.LR(s.run.LearningRate, s.iter)
	s.trainer.Optimizer.LR = lr
	batch := make([]Example, len(b.Audio))
	for i := range batch {
		batch[i] = Example{Mel: b.Mels[i], Audio: b.Audio[i]}
	}
	start := time.Now()
	r, err := s.trainer.Step(ctx, batch)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("iteration %d (files %s): %w", s.iter+1, strings.Join(b.Files, ", "), err)
	}
	s.iter++
	s.pos = b.Next
	rec := Record{
		Iteration: s.iter, Epoch: b.Next.Epoch, Loss: Float(r.Loss), GradNorm: Float(r.GradNorm),
		LR: lr, Seconds: time.Since(start).Seconds(), Skipped: r.Skipped,
	}
	if r.Skipped {
		rec.Files = b.Files
		s.logf("iteration %d: loss %v, gradient norm %v: step skipped, weights unchanged (files %s)", s.iter, r.Loss, r.GradNorm, strings.Join(b.Files, ", "))
	}
	if s.run.ValEvery > 0 && len(s.val) > 0 && s.iter%int64(s.run.ValEvery) == 0 {
		nll, err := s.Validate(ctx)
		switch {
		case err == nil:
			v, l := Float(nll), Float(nll-gaussNorm(s.run.Sigma))
			rec.ValNLL, rec.ValLoss = &v, &l
		case ctx.Err() == nil:
			return err
		}
	}
	rec.Time = time.Now().UTC().Truncate(time.Millisecond)
	s.history = append(s.history, rec)
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	if _, err := s.log.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("log: %w", err)
	}
	if s.OnStep != nil {
		s.OnStep(rec)
	}
	if s.iter%int64(s.run.CheckpointEvery) == 0 {
		if _, err := s.Save(); err != nil {
			return err
		}
	}
	return nil
}

// gaussNorm is the Gaussian normaliser ½·ln(2πσ²) that turns
// WaveGlowLoss into a negative log-likelihood.
func gaussNorm(sigma float64) float64 { return 0.5 * math.Log(2*math.Pi*sigma*sigma) }

// Validate returns the validation NLL: −log p(x | mel(x)) in nats per
// sample over all validation clips, each scored whole (trimmed to a
// multiple of n_group, conditioned on its own mel) with the current
// weights, as vocoder.Model.Score computes it (σ of the run; ½·ln(2πσ²)
// above the training loss's scale). Clips count in proportion to their
// length. It is deterministic: it depends only on the weights and the
// clips. It is NaN without validation files.
func (s *Session) Validate(ctx context.Context) (float64, error) {
	if len(s.val) == 0 {
		return math.NaN(), nil
	}
	vm, err := s.trainer.Model.ExportInference()
	if err != nil {
		return 0, err
	}
	var sum float64
	var n int
	for i, clip := range s.val {
		sc, err := vm.Score(ctx, clip, s.run.Sigma)
		if err != nil {
			return 0, fmt.Errorf("validation %s: %w", s.valFiles[i], err)
		}
		sum += sc.NLLNatsPerSample * float64(sc.Samples)
		n += sc.Samples
	}
	return sum / float64(n), nil
}

// Checkpoint returns the session's current state. It shares the model
// and the optimizer with the session.
func (s *Session) Checkpoint() *Checkpoint {
	return &Checkpoint{Model: s.trainer.Model, Optimizer: s.trainer.Optimizer, Run: s.run, Iteration: s.iter, Position: s.pos}
}

// Save writes a checkpoint of the current state into the session's
// directory (SaveCheckpoint) and redraws the loss curve; it returns the
// checkpoint's path.
func (s *Session) Save() (string, error) {
	if err := s.log.Sync(); err != nil {
		return "", fmt.Errorf("log: %w", err)
	}
	path, err := SaveCheckpoint(s.dir, s.Checkpoint(), s.run.Keep)
	if err != nil {
		return "", err
	}
	s.saved = s.iter
	msg := fmt.Sprintf("iteration %d: checkpoint %s", s.iter, path)
	if len(s.history) > 0 {
		last := s.history[len(s.history)-1]
		msg += fmt.Sprintf(", loss %.4f", float64(last.Loss))
		if last.ValNLL != nil {
			msg += fmt.Sprintf(", validation NLL %.4f", float64(*last.ValNLL))
		}
	}
	s.logf("%s", msg)
	if err := WriteLossPlot(filepath.Join(s.dir, PlotName), s.history); err != nil {
		return path, err
	}
	return path, nil
}
