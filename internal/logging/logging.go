// Package logging builds the zap logger every binary passes down; there is
// no global logger.
package logging

import (
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Options are the --log-format and --log-level flags.
type Options struct {
	Format string `yaml:"format"` // "console" (default) or "json"
	Level  string `yaml:"level"`  // "debug", "info" (default), "warn", "error"
}

// New builds a logger writing to w (stderr when nil).
func New(o Options, w io.Writer) (*zap.Logger, error) {
	if w == nil {
		w = os.Stderr
	}
	level := zapcore.InfoLevel
	if o.Level != "" {
		if err := level.UnmarshalText([]byte(o.Level)); err != nil {
			return nil, fmt.Errorf("--log-level: %q: use debug, info, warn or error", o.Level)
		}
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch o.Format {
	case "", "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	default:
		return nil, fmt.Errorf("--log-format: %q: use console or json", o.Format)
	}
	core := zapcore.NewCore(enc, zapcore.AddSync(w), level)
	return zap.New(core), nil
}
