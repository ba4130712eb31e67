package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/podiumlive/podium/configs"
)

// Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2
)

// exitError carries an exit code out of a cobra command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func execute(args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "podium",
		Short:         "Podium: RTMP ingest, transcode to H.264 + AAC, forward and HLS in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.AddCommand(serveCmd(), checkCmd(), versionCmd(), hwCmd(), clusterCmd())

	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "podium:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// Anything cobra itself rejects (unknown command or flag) is usage.
	return exitConfig
}

func loadConfig(path string) (*configs.Config, error) {
	cfg, err := configs.Load(path)
	if err != nil {
		return nil, &exitError{code: exitConfig, err: err}
	}
	return cfg, nil
}

func checkCmd() *cobra.Command {
	var (
		path        string
		showSecrets bool
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate a config file and print the effective config, secrets redacted (exit 2 on error)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			print := cfg.RedactedYAML
			if showSecrets {
				print = cfg.YAML
			}
			out, err := print()
			if err != nil {
				return &exitError{code: exitFail, err: fmt.Errorf("print config: %w", err)}
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file (default: the embedded default)")
	cmd.Flags().BoolVar(&showSecrets, "show-secrets", false, "print passwords, keys and URL credentials as configured instead of redacted")
	return cmd
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "podium %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}
