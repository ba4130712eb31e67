package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/podiumlive/podium/access"
	"github.com/podiumlive/podium/configs"
	"github.com/podiumlive/podium/forward"
	"github.com/podiumlive/podium/hls"
	"github.com/podiumlive/podium/hooks"
	"github.com/podiumlive/podium/hwaccel"
	ingestrtmp "github.com/podiumlive/podium/ingest/rtmp"
	ingestrtsp "github.com/podiumlive/podium/ingest/rtsp"
	"github.com/podiumlive/podium/ingest/stream"
	rtmpproto "github.com/podiumlive/podium/rtmp"
	"github.com/podiumlive/podium/transcode"
	"github.com/podiumlive/podium/transcode/av"
)

func serveCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run Podium (RTMP on listen.rtmp, HTTP on listen.http)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log, cmd.ErrOrStderr())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := serve(ctx, cfg, log, path); err != nil {
				return &exitError{code: exitFail, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file (default: the embedded default)")
	return cmd
}

func newLogger(c configs.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs every component until ctx ends, then stops them in order:
// ingest first (publishers unpublish, players leave), then HTTP, then the hub.
func serve(ctx context.Context, cfg *configs.Config, log *slog.Logger, path string) error {
	hubOpts := stream.DefaultOptions()
	hubOpts.GOPCache = cfg.RTMP.GOPCache
	if cfg.RTMP.QueuePackets > 0 {
		hubOpts.QueuePackets = cfg.RTMP.QueuePackets
	}
	hub := stream.NewHub(hubOpts, log.With("component", "hub"))

	limits := rtmpproto.DefaultLimits()
	if d := cfg.RTMP.HandshakeTimeout.Std(); d > 0 {
		limits.HandshakeTimeout = d
	}
	// One guard admits publishers and players of every protocol.
	guard := access.New(cfg, hooks.New(hooks.DefaultTimeout, log.With("component", "hooks")),
		log.With("component", "access"))
	late := &edgeLate{} // the edge's RTMP hooks, set once it exists
	rtmpSrv := ingestrtmp.New(ingestrtmp.Config{
		Addr:     cfg.Listen.RTMP,
		PlayWait: cfg.RTMP.PlayWait.Std(),
		Limits:   limits,
		Vhost:    func(name string) bool { return cfg.Vhost(name) != nil },
		NoDelay: func(name string) bool {
			v := cfg.Vhost(name)
			return v != nil && v.TCPNoDelay
		},
		Access:   guard,
		Redirect: late.redirect,
		Yield:    late.yield,
	}, hub, log.With("component", "rtmp"))
	if err := rtmpSrv.Listen(); err != nil {
		return err
	}
	var rtspSrv *ingestrtsp.Server
	if cfg.Listen.RTSP != "" {
		rtspSrv = newRTSPServer(cfg, hub, guard, log.With("component", "rtsp"))
		if err := rtspSrv.Listen(); err != nil {
			return err
		}
	}

	httpLn, err := net.Listen("tcp", cfg.Listen.HTTP)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", cfg.Listen.HTTP, err)
	}
	// The HTTP listener carries HLS, the dashboard and the API; see
	// httpRoutes. Components fill routes in as they are built below.
	routes := httpRoutes{hls: http.NotFoundHandler(), flv: http.NotFoundHandler(), ui: http.NotFoundHandler()}
	httpSrv := &http.Server{
		Handler:           routes.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		MaxHeaderBytes:    16 << 10,
		// No ReadTimeout or WriteTimeout: the dashboard's live updates are
		// one long response. Idle keep-alive connections go after 2 min.
		IdleTimeout: 2 * time.Minute,
	}

	av.InstallLog(log.With("component", "libav"))
	backends, probed := usableBackends(ctx, cfg.HWAccel, log.With("component", "hwaccel"))
	engine := transcode.NewEngine(hub, func(vhost string) (transcode.Settings, bool) {
		v := cfg.Vhost(vhost)
		if v == nil || v.Transcode == nil {
			return transcode.Settings{}, false
		}
		s := transcode.SettingsFrom(v.Transcode, cfg.HWAccel)
		s.Backends = backends
		return s, true
	}, log.With("component", "transcode"))

	// The cluster stage: heartbeat, allocator, the registry's groups
	// (cl.directory(), for forward and the edge); its meter counts viewers
	// (and checks play tokens) on HLS and HTTP-FLV.
	cl, err := newCluster(cfg, hub, log.With("component", "cluster"))
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	engine.Start(runCtx)
	// Forward outlives runCtx: at shutdown its handlers drain the streams
	// that ingest and transcode end, flush, and close gracefully.
	fwdCtx, fwdStop := context.WithCancel(context.WithoutCancel(ctx))
	defer fwdStop()
	fwd := forward.NewManager(hub, forward.SettingsFrom(cfg), forward.Options{Groups: cl.directory()}, log.With("component", "forward"))
	fwd.Start(fwdCtx)
	// HLS, like forward, outlives runCtx: at shutdown each segmenter
	// writes the last segment of the stream that ingest and transcode end.
	hlsMgr, err := hls.NewManager(hub, hls.SettingsFrom(cfg), hls.Options{OnDemand: edgeVhost(cfg)}, log.With("component", "hls"))
	if err != nil {
		return err
	}
	if err := hlsMgr.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	cl.useHLS(hlsMgr)
	routes.hls = cl.meter.Wrap(hlsMgr)
	flvSrv := newFLVServer(runCtx, cfg, hub, guard, log.With("component", "flv"))
	routes.flv = cl.meter.Wrap(flvSrv)
	recorder, err := startDVR(ctx, cfg, hub, log.With("component", "dvr"))
	if err != nil {
		return err
	}
	// RTSP pulls publish like encoders: after every consumer listens.
	sources := newSources(cfg, hub, guard, log.With("component", "rtsp-source"))
	sources.Start(runCtx)
	// Edge vhosts pull from their origins when a stream is played.
	edges := newEdge(cfg, hub, limits, cl.directory(), log.With("component", "edge"))
	late.e.Store(edges)
	edges.Start(runCtx)
	// The dashboard, API and /metrics; the HW panel is what `podium hw`
	// says, probed once here.
	dash, err := newUI(cfg, uiParts{hub: hub, engine: engine, fwd: fwd, hls: hlsMgr, sources: sources, dvr: recorder, edge: edges,
		hw: probeRest(ctx, cfg.HWAccel.Device, probed), cluster: cl.c}, os.Stderr, log.With("component", "ui"))
	if err != nil {
		return err
	}
	cl.cpu = dash.CPU
	routes.ui = dash.Handler()
	go reloadOnHUP(runCtx, path, cfg, fwd, guard, log.With("component", "config"))
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(3)
	go func() { defer wg.Done(); hub.Run(runCtx) }()
	wg.Add(1)
	go func() { defer wg.Done(); dash.Run(runCtx) }()
	wg.Add(1)
	go func() { defer wg.Done(); cl.run(runCtx) }()
	go func() {
		defer wg.Done()
		if err := rtmpSrv.Serve(runCtx); err != nil {
			errc <- err
		}
	}()
	if rtspSrv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rtspSrv.Serve(runCtx); err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		}()
	}
	go func() {
		defer wg.Done()
		log.Info("http listening", "addr", httpLn.Addr().String())
		if err := httpSrv.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http serve: %w", err)
		}
	}()
	log.Info("podium started", "version", version, "vhosts", len(cfg.Vhosts))

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("podium stopping")
	case runErr = <-errc:
		log.Error("podium stopping", "err", runErr)
	}
	cancel()
	shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = httpSrv.Shutdown(shutdownCtx)
	flvSrv.Wait()
	wg.Wait()
	sources.Wait()
	edges.Wait()
	engine.Wait()
	hub.Close()
	hlsMgr.Close()
	recorder.Close()
	fwdStop()
	fwd.Wait()
	guard.Wait() // the last on_unpublish/on_stop (bounded by the hook timeout)
	log.Info("podium stopped")
	return runErr
}

// usableBackends probes the preferred encoders once at start: streams then
// try only those that work here (software always last), and each stream
// still falls back at run time if its encoder fails to open.
func usableBackends(ctx context.Context, hw configs.HWAccel, log *slog.Logger) ([]hwaccel.Backend, []hwaccel.Status) {
	chain := hwaccel.Chain(hw.Prefer)
	var usable []hwaccel.Backend
	var probed []hwaccel.Status
	for _, b := range chain {
		st := b.Probe(ctx, hw.Device)
		probed = append(probed, st)
		if st.Usable {
			log.Info("video encoder usable", "backend", st.Backend, "encoder", st.Encoder, "device", st.Device)
			usable = append(usable, b)
			continue
		}
		log.Warn("video encoder not usable", "backend", st.Backend, "encoder", st.Encoder, "reason", st.Reason)
	}
	if len(usable) == 0 {
		// Nothing probed usable (not even libx264): keep the chain, so each
		// stream reports why its encoder fails.
		return chain, probed
	}
	return usable, probed
}

// httpRoutes splits the HTTP listener between its users: /healthz here,
// HLS playlists and segments (by extension, at any path: /APP/STREAM.m3u8)
// to hls, HTTP-FLV plays (/APP/STREAM.flv, outside /api/) to flv,
// everything else (dashboard, /api/, /metrics) to ui.
type httpRoutes struct {
	hls http.Handler
	flv http.Handler
	ui  http.Handler
}

// hlsExts are the file types the HLS handler serves.
var hlsExts = []string{".m3u8", ".ts", ".m4s", ".mp4"}

func (rt *httpRoutes) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "/healthz" {
			_, _ = io.WriteString(w, "ok\n")
			return
		}
		if strings.HasSuffix(p, ".flv") && !strings.HasPrefix(p, "/api/") {
			rt.flv.ServeHTTP(w, r)
			return
		}
		for _, ext := range hlsExts {
			if strings.HasSuffix(p, ext) {
				rt.hls.ServeHTTP(w, r)
				return
			}
		}
		rt.ui.ServeHTTP(w, r)
	})
}
