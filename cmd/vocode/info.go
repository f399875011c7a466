package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
)

var infoCommand = &command{
	name:    "info",
	args:    "[--config C.json] MODEL",
	summary: "print a model's configuration as JSON",
	details: `
Info prints the model's configuration in NVIDIA's config.json layout
(waveglow_config, data_config), so that the output can serve as --config,
plus "parameters", the number of inference parameters (weight norm folded).`,
	setup: setupInfo,
}

func setupInfo(fs *flag.FlagSet) runFunc {
	var mf modelFlags
	mf.register(fs)
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 1 {
			return usagef("want exactly one model, got %d", len(args))
		}
		m, err := loadModel(args[0], &mf)
		if err != nil {
			return err
		}
		cfg, err := json.Marshal(m.Config())
		if err != nil {
			return fmt.Errorf("encode config: %w", err)
		}
		var info map[string]json.RawMessage
		if err := json.Unmarshal(cfg, &info); err != nil {
			return fmt.Errorf("encode config: %w", err)
		}
		params := 0
		for _, t := range m.StateDict() {
			params += len(t.Data)
		}
		info["parameters"] = json.RawMessage(fmt.Sprint(params))
		return printJSON(e, info)
	}
}
