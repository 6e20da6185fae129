package platform

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// ParseLevel reads a log level name.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("log level %q: %w", s, err)
	}
	return l, nil
}

// NewLogger builds the process logger (JSON or text), makes it slog's default and routes
// sarama's global logger into it at debug (it is chatty about metadata). goka's loggers are set
// per processor, view and emitter (gokaLogger, at info) where they are built.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json", "":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q is neither json nor text", format)
	}
	logger := slog.New(h)
	slog.SetDefault(logger)
	sarama.Logger = printfLogger{component: "sarama", level: slog.LevelDebug}
	return logger, nil
}

// printfLogger adapts the Print/Printf loggers of goka and sarama to slog's default logger.
// It resolves slog.Default at each call so that it follows NewLogger.
type printfLogger struct {
	component string
	level     slog.Level
}

func (l printfLogger) log(msg string) {
	logger := slog.Default()
	if !logger.Enabled(context.Background(), l.level) {
		return
	}
	logger.Log(context.Background(), l.level, strings.TrimSpace(msg), slog.String("component", l.component))
}

func (l printfLogger) Print(v ...any)                 { l.log(fmt.Sprint(v...)) }
func (l printfLogger) Println(v ...any)               { l.log(fmt.Sprint(v...)) }
func (l printfLogger) Printf(format string, v ...any) { l.log(fmt.Sprintf(format, v...)) }

// gokaLogger is the logger given to goka components, tagged with the component's name.
func gokaLogger(component string) goka.Logger {
	return printfLogger{component: "goka " + component, level: slog.LevelInfo}
}
