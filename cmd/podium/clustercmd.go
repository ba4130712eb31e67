package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/podiumlive/podium/cluster"
)

// clusterCmd prints what the registry holds: every node (line, state,
// load, heartbeat age) and every stream with the nodes that have it.
func clusterCmd() *cobra.Command {
	var path string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show what the cluster registry holds: nodes, their load, and streams",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if cfg.Cluster == nil || cfg.Cluster.Redis == "" {
				_, err := fmt.Fprintln(out, "registry: in-memory (cluster.redis is not set): only the running box knows it; see GET /api/v1/cluster/nodes on it")
				return err
			}
			reg, name, err := newRegistry(cfg.Cluster)
			if err != nil {
				return &exitError{code: exitConfig, err: err}
			}
			defer reg.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			var logs strings.Builder
			nodes, streams, groups, err := cluster.Inspect(ctx, reg, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				return &exitError{code: exitFail, err: fmt.Errorf("registry %s: %w", name, err)}
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"registry": name, "nodes": nodes, "streams": streams, "groups": groups})
			}
			if err := printCluster(out, name, nodes, streams); err != nil {
				return err
			}
			if err := printGroups(out, groups); err != nil {
				return err
			}
			if logs.Len() > 0 {
				fmt.Fprint(cmd.ErrOrStderr(), logs.String()) // skipped entries
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file (default: the embedded default)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printCluster(w io.Writer, registry string, nodes []cluster.NodeInfo, streams []cluster.StreamInfo) error {
	fmt.Fprintf(w, "registry: %s\n\n", registry)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tLINE\tKIND\tSTATE\tSERVE\tVIEWERS\tALLOCATED\tMAX\tEGRESS\tCPU\tSTREAMS\tHEARTBEAT\tURL")
	for _, n := range nodes {
		maxV := "-"
		if n.MaxViewers > 0 {
			maxV = fmt.Sprint(n.MaxViewers)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%d\t%d\t%s\t%.1f Mbit/s\t%.0f%%\t%d\t%.1fs ago\t%s\n",
			n.ID, n.Line, n.Kind, n.State, n.Serve, n.Viewers, n.Reserved, maxV,
			float64(n.EgressBps)/1e6, n.CPU*100, len(n.Streams), float64(n.HeartbeatAgeMs)/1000, n.URL)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(nodes) == 0 {
		fmt.Fprintln(w, "(no nodes)")
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tVIEWERS\tNODES (ready)")
	for _, s := range streams {
		var on []string
		for _, n := range s.Nodes {
			mark := ""
			if n.Ready {
				mark = "*"
			}
			on = append(on, n.Node+mark)
		}
		fmt.Fprintf(tw, "%s/%s/%s\t%d\t%s\n", s.Vhost, s.App, s.Stream, s.Viewers, strings.Join(on, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(streams) == 0 {
		fmt.Fprintln(w, "(no streams)")
	}
	return nil
}

// printGroups lists each group of origins: its live members least loaded
// first, their load inputs, and the classes each owns.
func printGroups(w io.Writer, groups []cluster.GroupInfo) error {
	if len(groups) == 0 {
		return nil
	}
	for _, g := range groups {
		fmt.Fprintf(w, "\ngroup %s (%d live members)\n", g.Name, len(g.Members))
		owned := map[string][]string{}
		for k, n := range g.Owners {
			owned[n] = append(owned[n], k)
		}
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "MEMBER\tRTMP\tLOAD\tCLASSES\tTRANSCODES\tCPU\tOWNS")
		shown := map[string]bool{}
		for _, m := range g.Members {
			shown[m.Node] = true
			slices.Sort(owned[m.Node])
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t%d\t%d\t%.0f%%\t%s\n", m.Node, m.RTMP, m.Load, m.Streams, m.Transcodes, m.CPU*100, strings.Join(owned[m.Node], " "))
		}
		for _, n := range slices.Sorted(maps.Keys(owned)) {
			if !shown[n] {
				slices.Sort(owned[n])
				fmt.Fprintf(tw, "%s (not live)\t-\t-\t-\t-\t-\t%s\n", n, strings.Join(owned[n], " "))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
