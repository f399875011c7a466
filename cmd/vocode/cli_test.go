package main

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		args      []string
		wantO     string
		wantSigma float64
		wantQuiet bool
		wantArgs  []string
		wantErr   bool
	}{
		{"flags first", []string{"-o", "x", "a", "b"}, "x", 0.6, false, []string{"a", "b"}, false},
		{"flags last", []string{"a", "b", "-o", "x", "--sigma", "1"}, "x", 1, false, []string{"a", "b"}, false},
		{"mixed with =", []string{"a", "--o=x", "b", "-sigma=0.5"}, "x", 0.5, false, []string{"a", "b"}, false},
		{"negative value", []string{"a", "--sigma", "-1"}, "", -1, false, []string{"a"}, false},
		{"bool takes no value", []string{"--quiet", "a", "b"}, "", 0.6, true, []string{"a", "b"}, false},
		{"bool with =", []string{"a", "--quiet=false"}, "", 0.6, false, []string{"a"}, false},
		{"double dash ends flags", []string{"-o", "x", "--", "-a", "--sigma"}, "x", 0.6, false, []string{"-a", "--sigma"}, false},
		{"lone dash is positional", []string{"-", "-o", "x"}, "x", 0.6, false, []string{"-"}, false},
		{"unknown flag", []string{"a", "--nope", "b"}, "", 0.6, false, nil, true},
		{"missing value", []string{"a", "-o"}, "", 0.6, false, nil, true},
		{"bad value", []string{"--sigma", "loud"}, "", 0.6, false, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o := fs.String("o", "", "")
			sigma := fs.Float64("sigma", 0.6, "")
			quiet := fs.Bool("quiet", false, "")
			args, err := parseInterspersed(fs, tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if *o != tt.wantO || *sigma != tt.wantSigma || *quiet != tt.wantQuiet || !slices.Equal(args, tt.wantArgs) {
				t.Errorf("o %q, sigma %v, quiet %v, args %q; want %q, %v, %v, %q", *o, *sigma, *quiet, args, tt.wantO, tt.wantSigma, tt.wantQuiet, tt.wantArgs)
			}
		})
	}
}
