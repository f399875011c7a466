package train

import (
	"math"
	"strings"
	"testing"
)

func TestScheduleLR(t *testing.T) {
	t.Parallel()
	const base = 1e-3
	tests := []struct {
		name string
		s    Schedule
		lrs  map[int64]float64 // iteration → expected rate
	}{
		{"constant", Schedule{Kind: ScheduleConstant}, map[int64]float64{0: base, 1: base, 1e6: base}},
		{"constant with warmup", Schedule{Kind: ScheduleConstant, Warmup: 4}, map[int64]float64{0: base / 4, 1: base / 2, 3: base, 4: base, 100: base}},
		{"cosine", Schedule{Kind: ScheduleCosine, DecaySteps: 100, MinLR: 1e-5}, map[int64]float64{0: base, 50: (base + 1e-5) / 2, 100: 1e-5, 1000: 1e-5}},
		{"cosine after warmup", Schedule{Kind: ScheduleCosine, Warmup: 10, DecaySteps: 100}, map[int64]float64{4: base / 2, 10: base, 60: base / 2, 110: 0}},
		{"step", Schedule{Kind: ScheduleStep, DecaySteps: 10, Gamma: 0.5}, map[int64]float64{0: base, 9: base, 10: base / 2, 25: base / 4}},
		{"step after warmup", Schedule{Kind: ScheduleStep, Warmup: 5, DecaySteps: 10, Gamma: 0.1}, map[int64]float64{0: base / 5, 5: base, 14: base, 15: base / 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.s.Validate(); err != nil {
				t.Fatal(err)
			}
			for i, want := range tt.lrs {
				if got := tt.s.LR(base, i); math.Abs(got-want) > 1e-15 {
					t.Errorf("iteration %d: lr %v, want %v", i, got, want)
				}
			}
		})
	}
}

func TestScheduleValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    Schedule
		want string
	}{
		{Schedule{Kind: "linear"}, `unknown learning-rate schedule "linear"`},
		{Schedule{Kind: ScheduleCosine}, "decay steps"},
		{Schedule{Kind: ScheduleCosine, DecaySteps: 10, MinLR: -1}, "minimum learning rate"},
		{Schedule{Kind: ScheduleStep, DecaySteps: 10}, "decay factor 0"},
		{Schedule{Kind: ScheduleStep, Gamma: 0.5}, "step period"},
		{Schedule{Kind: ScheduleConstant, Warmup: -1}, "warmup -1"},
	}
	for _, tt := range tests {
		if err := tt.s.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", tt.s, err, tt.want)
		}
	}
}
