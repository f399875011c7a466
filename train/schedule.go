package train

import (
	"fmt"
	"math"
)

// Learning-rate schedule kinds.
const (
	// ScheduleConstant keeps the base learning rate (NVIDIA's train.py).
	ScheduleConstant = "constant"
	// ScheduleCosine decays the rate along half a cosine from the base to
	// MinLR over DecaySteps iterations, then keeps MinLR.
	ScheduleCosine = "cosine"
	// ScheduleStep multiplies the rate by Gamma every DecaySteps
	// iterations.
	ScheduleStep = "step"
)

// Schedule is a learning-rate schedule: the rate of every iteration as a
// pure function of the iteration number, so that a resumed run follows
// the same rates as an uninterrupted one.
//
// An optional linear warmup comes first: iteration i < Warmup (counting
// from 0) uses base·(i+1)/Warmup. The schedule's Kind then applies to
// t = i − Warmup:
//
//	constant  base
//	cosine    MinLR + (base − MinLR)·(1 + cos(π·t/DecaySteps))/2 for t < DecaySteps, MinLR after
//	step      base·Gamma^⌊t/DecaySteps⌋
type Schedule struct {
	Kind       string  `json:"kind"`
	Warmup     int64   `json:"warmup,omitempty"`
	DecaySteps int64   `json:"decay_steps,omitempty"`
	Gamma      float64 `json:"gamma,omitempty"`
	MinLR      float64 `json:"min_lr,omitempty"`
}

// Validate reports whether s is a usable schedule.
func (s Schedule) Validate() error {
	if s.Warmup < 0 {
		return fmt.Errorf("learning-rate warmup %d must not be negative", s.Warmup)
	}
	switch s.Kind {
	case ScheduleConstant:
		return nil
	case ScheduleCosine:
		if s.DecaySteps <= 0 {
			return fmt.Errorf("cosine learning-rate schedule needs a positive number of decay steps, got %d", s.DecaySteps)
		}
		if !(s.MinLR >= 0) || math.IsInf(s.MinLR, 0) {
			return fmt.Errorf("minimum learning rate %v must be finite and non-negative", s.MinLR)
		}
		return nil
	case ScheduleStep:
		if s.DecaySteps <= 0 {
			return fmt.Errorf("step learning-rate schedule needs a positive step period, got %d", s.DecaySteps)
		}
		if !(s.Gamma > 0) || math.IsInf(s.Gamma, 0) {
			return fmt.Errorf("learning-rate decay factor %v must be positive and finite", s.Gamma)
		}
		return nil
	default:
		return fmt.Errorf("unknown learning-rate schedule %q (want %s, %s or %s)", s.Kind, ScheduleConstant, ScheduleCosine, ScheduleStep)
	}
}

// LR returns the learning rate of iteration i (counting from 0) for base
// rate base.
func (s Schedule) LR(base float64, i int64) float64 {
	if i < s.Warmup {
		return base * float64(i+1) / float64(s.Warmup)
	}
	t := i - s.Warmup
	switch s.Kind {
	case ScheduleCosine:
		if t >= s.DecaySteps {
			return s.MinLR
		}
		return s.MinLR + (base-s.MinLR)*(1+math.Cos(math.Pi*float64(t)/float64(s.DecaySteps)))/2
	case ScheduleStep:
		return base * math.Pow(s.Gamma, float64(t/s.DecaySteps))
	default:
		return base
	}
}
