package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/glowvoc/glowvoc/internal/atomicfile"
)

// Record is one training iteration as the session's log (train.jsonl)
// records it, one JSON object per line.
type Record struct {
	// Iteration is the number of iterations completed with this one
	// (the first is 1; NVIDIA's train.py prints it counting from 0).
	Iteration int64 `json:"iteration"`
	// Epoch is the pass over the training files the batch came from,
	// counting from 0.
	Epoch int `json:"epoch"`
	// Loss is WaveGlowLoss of the batch before the update, GradNorm the
	// Euclidean norm of the whole gradient. Non-finite values are written
	// as null.
	Loss     Float `json:"loss"`
	GradNorm Float `json:"grad_norm"`
	// LR is the learning rate of the update.
	LR float64 `json:"lr"`
	// Seconds is the wall time of the step (forward, backward, update).
	Seconds float64 `json:"seconds"`
	// Time is when the iteration ended, validation included.
	Time time.Time `json:"time"`
	// Skipped reports a step whose loss or gradient was not finite: the
	// weights and the optimizer were left unchanged. Files are then the
	// batch's files.
	Skipped bool     `json:"skipped"`
	Files   []string `json:"files,omitempty"`
	// ValNLL is the validation NLL after this iteration's update, when it
	// was computed (see Session.Validate); ValLoss is the same on the
	// scale of Loss: ValNLL − ½·ln(2πσ²).
	ValNLL  *Float `json:"val_nll,omitempty"`
	ValLoss *Float `json:"val_loss,omitempty"`
}

// Float is a float64 whose JSON form is null when it is NaN or infinite
// (which JSON numbers cannot express); null decodes as NaN.
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(f), 'g', -1, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// readLog reads the records of a train.jsonl log up to iteration upTo. A
// line that does not parse ends the log (a crash can cut the last line
// short); dropped reports whether the file held anything else, which the
// caller then rewrites. A missing file is an empty log.
func readLog(path string, upTo int64) (recs []Record, dropped bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var rec Record
			if json.Unmarshal(line, &rec) != nil || rec.Iteration > upTo {
				return recs, true, nil
			}
			recs = append(recs, rec)
		}
		if errors.Is(err, io.EOF) {
			return recs, false, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}

// writeLog writes recs atomically as a JSONL log at path.
func writeLog(path string, recs []Record) error {
	return atomicfile.WriteFile(path, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeFileAtomic writes b atomically to path.
func writeFileAtomic(path string, b []byte) error {
	return atomicfile.WriteFile(path, 0o644, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}
