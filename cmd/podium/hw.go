package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/podiumlive/podium/hwaccel"
	"github.com/podiumlive/podium/transcode/av"
)

// hwProbeTimeout bounds the whole probe: a driver that hangs must not hang
// `podium hw`.
const hwProbeTimeout = 60 * time.Second

// hwCmd is `podium hw [--device PATH]`: it opens every encoder, encodes a
// few frames, and prints what this box really has and why not. It exits 1
// only when not even libx264 works.
func hwCmd() *cobra.Command {
	var device string
	cmd := &cobra.Command{
		Use:   "hw",
		Short: "Show which H.264 encoders this box really has (opens each one)",
		Long: "Opens each video encoder backend (nvenc, qsv, vaapi, software) and encodes a few\n" +
			"frames, as a stream would, then prints whether it is usable and, when not, why.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// libav's own warnings (e.g. NVENC's "OpenEncodeSessionEx failed")
			// go to stderr, below the table's reasons.
			av.InstallLog(slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})))
			parent := cmd.Context()
			if parent == nil {
				parent = context.Background()
			}
			ctx, cancel := context.WithTimeout(parent, hwProbeTimeout)
			defer cancel()
			st := hwaccel.ProbeAll(ctx, device)
			hwaccel.WriteTable(cmd.OutOrStdout(), st)
			for _, s := range st {
				if s.Backend == hwaccel.Software && !s.Usable {
					return &exitError{code: exitFail, err: fmt.Errorf("no usable video encoder, not even libx264: %s", s.Reason)}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&device, "device", "", "render node for VAAPI, e.g. /dev/dri/renderD128 (default: the first one)")
	return cmd
}
