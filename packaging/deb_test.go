package packaging

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// runOut runs a command and returns its combined output and exit code; it
// fails the test only when the command cannot start.
func runOut(t *testing.T, env []string, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	require.NoError(t, err, "%s %v", name, args)
	return string(out), 0
}

// dpkg runs dpkg, waiting up to a minute for another dpkg or apt on this
// machine to release its lock.
func dpkg(t *testing.T, args ...string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out, code := runOut(t, []string{"DEBIAN_FRONTEND=noninteractive"}, "dpkg", args...)
		if code == 0 {
			return
		}
		if !strings.Contains(out, "lock") || time.Now().After(deadline) {
			t.Fatalf("dpkg %v: exit %d\n%s", args, code, out)
		}
		time.Sleep(time.Second)
	}
}

func mustRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, code := runOut(t, env, name, args...)
	require.Equal(t, 0, code, "%s %v:\n%s", name, args, out)
	return out
}

// unitFile parses a systemd unit into section -> key -> values (a key may
// repeat).
func unitFile(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			require.True(t, ok, "unit line %q", line)
			out[section][k] = append(out[section][k], v)
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// debFiles are the files the package installs (and purge must remove).
var debFiles = []string{
	"/usr/bin/podium",
	"/etc/podium/podium.yaml",
	"/lib/systemd/system/podium.service",
	"/usr/share/doc/podium/deploy.md",
	"/usr/share/doc/podium/examples/master.yaml",
}

// TestDeb builds the .deb the way `make deb` does (packaging/deb.sh on a
// binary linked with packaging/version.sh's version), installs it with
// dpkg, checks what it installed, and purges it. It needs root: CI runs as
// root on a Debian 12 machine.
func TestDeb(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("TestDeb installs the podium .deb with dpkg and purges it: run it as root (CI does), " +
			"e.g. sudo go test ./packaging/")
	}
	// Two test runs at once on one machine (developers sharing a box) take
	// turns: the package, the user and the paths are machine-wide.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "podium-deb-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	t.Cleanup(func() { lock.Close() }) // closing releases the lock, after the purge below

	if out, code := runOut(t, nil, "dpkg-query", "-W", "-f=${Status}", "podium"); code == 0 && strings.Contains(out, "installed") {
		t.Fatalf("a podium package is already installed here (%s): this test would purge it; remove it first", out)
	}
	_, err = user.Lookup("podium")
	require.Error(t, err, "a user podium exists before the install: the test could not tell the package made it")
	_, renderErr := user.LookupGroup("render")
	renderBefore := renderErr == nil

	dir := t.TempDir()
	version := mustRun(t, nil, "bash", "version.sh")
	version = strings.TrimSpace(version)
	bin := filepath.Join(dir, "podium")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	// Exactly `make build`'s command line (Makefile: LDFLAGS).
	mustRun(t, nil, gobin, "build", "-ldflags", "-X main.version="+version, "-o", bin, "../cmd/podium")
	mustRun(t, []string{"GO=" + gobin, "VERSION=" + version}, "bash", "deb.sh", bin, filepath.Join(dir, "dist"))
	deb := filepath.Join(dir, "dist", "podium_"+version+"_amd64.deb")
	st, err := os.Stat(deb)
	require.NoError(t, err, "deb.sh names the package podium_<version>_amd64.deb")
	t.Logf("%s: %.1f MiB", filepath.Base(deb), float64(st.Size())/(1<<20))

	t.Run("control", func(t *testing.T) {
		field := func(name string) string {
			return strings.TrimSpace(mustRun(t, nil, "dpkg-deb", "-f", deb, name))
		}
		require.Equal(t, "podium", field("Package"))
		require.Equal(t, version, field("Version"))
		require.Equal(t, "amd64", field("Architecture"))
		depends := map[string]bool{}
		for _, d := range strings.Split(field("Depends"), ",") {
			depends[strings.Fields(d)[0]] = true
		}
		// Every shared library the binary links comes from a package the
		// .deb depends on (dpkg -S asks which package owns it here).
		f, err := elf.Open(bin)
		require.NoError(t, err)
		libs, err := f.ImportedLibraries()
		f.Close()
		require.NoError(t, err)
		require.NotEmpty(t, libs)
		for _, lib := range libs {
			out := mustRun(t, nil, "dpkg", "-S", "*/"+lib)
			owner := ""
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				pkg, _, _ := strings.Cut(line, ":")
				if !strings.HasSuffix(pkg, "-dev") {
					owner = pkg
				}
			}
			require.True(t, depends[owner], "bin/podium needs %s from %s: add it to packaging/nfpm.yaml depends", lib, owner)
		}
		for _, p := range []string{"libavcodec59", "libavformat59", "libavfilter8", "libavutil57",
			"libavdevice59", "libswscale6", "libswresample4"} {
			require.True(t, depends[p], "Depends: %s", p)
		}

		ctl := filepath.Join(dir, "control")
		mustRun(t, nil, "dpkg-deb", "-e", deb, ctl)
		conffiles, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
		require.NoError(t, err)
		require.Equal(t, "/etc/podium/podium.yaml", strings.TrimSpace(string(conffiles)))
		for _, s := range []string{"postinst", "prerm", "postrm"} {
			mustRun(t, nil, "sh", "-n", filepath.Join(ctl, s))
		}
	})

	// From here on the machine changes: undo it whatever happens.
	t.Cleanup(func() {
		if out, code := runOut(t, nil, "dpkg", "--purge", "podium"); code != 0 {
			t.Errorf("dpkg --purge podium: %s", out)
		}
		if !renderBefore {
			// The postinst made the render group (udev makes it on real
			// machines); put this machine back as it was.
			_, _ = runOut(t, nil, "groupdel", "render")
		}
	})
	dpkg(t, "-i", deb)

	t.Run("installed", func(t *testing.T) {
		for _, p := range debFiles {
			_, err := os.Stat(p)
			require.NoError(t, err, p)
		}
		out := mustRun(t, nil, "/usr/bin/podium", "version")
		require.Contains(t, out, "podium "+version+" ", "podium version and the package agree")

		out = mustRun(t, nil, "/usr/bin/podium", "check", "--config", "/etc/podium/podium.yaml")
		var eff struct {
			DataDir string `yaml:"data_dir"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(out), &eff))
		require.Equal(t, "/var/lib/podium", eff.DataDir)
		// The service's user can read its config (0640 root:podium).
		mustRun(t, nil, "runuser", "-u", "podium", "--", "/usr/bin/podium", "check", "--config", "/etc/podium/podium.yaml")
		for _, role := range []string{"relay", "master", "slave", "recorder"} {
			mustRun(t, nil, "/usr/bin/podium", "check", "--config", "/usr/share/doc/podium/examples/"+role+".yaml")
		}
	})

	t.Run("user", func(t *testing.T) {
		u, err := user.Lookup("podium")
		require.NoError(t, err)
		require.Equal(t, "/var/lib/podium", u.HomeDir)
		groups := strings.Fields(mustRun(t, nil, "id", "-nG", "podium"))
		require.Subset(t, groups, []string{"podium", "video", "render"})
		pw := strings.Split(strings.TrimSpace(mustRun(t, nil, "getent", "passwd", "podium")), ":")
		require.Equal(t, "/usr/sbin/nologin", pw[6])
		require.Less(t, len(pw[2]), 4, "a system uid (below 1000): %s", pw[2])

		stat := func(p string) string { return strings.TrimSpace(mustRun(t, nil, "stat", "-c", "%U:%G %a", p)) }
		require.Equal(t, "podium:podium 750", stat("/var/lib/podium"))
		require.Equal(t, "root:podium 640", stat("/etc/podium/podium.yaml"))
		require.Equal(t, "root:root 755", stat("/usr/bin/podium"))
	})

	t.Run("unit", func(t *testing.T) {
		const unit = "/lib/systemd/system/podium.service"
		u := unitFile(t, unit)
		svc := u["Service"]
		want := map[string]string{
			"User":                "podium",
			"Group":               "podium",
			"ExecStart":           "/usr/bin/podium serve --config /etc/podium/podium.yaml",
			"Restart":             "always",
			"RestartSec":          "1",
			"NoNewPrivileges":     "yes",
			"ProtectSystem":       "strict",
			"ReadWritePaths":      "/var/lib/podium",
			"StateDirectory":      "podium",
			"SupplementaryGroups": "video render",
		}
		for k, v := range want {
			require.Equal(t, []string{v}, svc[k], "[Service] %s", k)
		}
		require.Equal(t, []string{"0"}, u["Unit"]["StartLimitIntervalSec"], "an appliance never stops restarting")
		require.Equal(t, []string{"multi-user.target"}, u["Install"]["WantedBy"])
		// Each of these closes the device cgroup or hides /dev: no GPU.
		for _, k := range []string{"PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock", "PrivateUsers", "MemoryDenyWriteExecute"} {
			require.NotContains(t, svc, k, "[Service] %s would take the GPU away", k)
		}
		// systemd's own parser accepts it (works without a running systemd).
		mustRun(t, nil, "systemd-analyze", "verify", unit)
		// Enabled, as dh_installsystemd would: it starts at boot.
		link, err := os.Readlink("/etc/systemd/system/multi-user.target.wants/podium.service")
		require.NoError(t, err, "postinst enables podium.service")
		require.Equal(t, unit, link)
		if _, err := os.Stat("/run/systemd/system"); err == nil {
			// A machine booted with systemd: systemd itself sees it enabled.
			mustRun(t, nil, "systemctl", "is-enabled", "podium.service")
		}
	})

	t.Run("conffile survives reinstall", func(t *testing.T) {
		const conf = "/etc/podium/podium.yaml"
		orig, err := os.ReadFile(conf)
		require.NoError(t, err)
		edited := append(bytes.Clone(orig), []byte("# edited by the school's IT person\n")...)
		require.NoError(t, os.WriteFile(conf, edited, 0o640))
		dpkg(t, "-i", deb)
		got, err := os.ReadFile(conf)
		require.NoError(t, err)
		require.Equal(t, string(edited), string(got), "dpkg kept the edited conffile")
		// Still the service's file after the upgrade path of the postinst.
		require.Equal(t, "root:podium 640", strings.TrimSpace(mustRun(t, nil, "stat", "-c", "%U:%G %a", conf)))
	})

	t.Run("purge leaves nothing", func(t *testing.T) {
		dpkg(t, "--purge", "podium")
		for _, p := range append(debFiles, "/etc/podium", "/var/lib/podium",
			"/etc/systemd/system/multi-user.target.wants/podium.service",
			"/etc/systemd/system/podium.service") {
			_, err := os.Lstat(p)
			require.True(t, errors.Is(err, os.ErrNotExist), "%s is left after purge", p)
		}
		_, err := user.Lookup("podium")
		require.Error(t, err, "user podium is left after purge")
		_, err = user.LookupGroup("podium")
		require.Error(t, err, "group podium is left after purge")
		out, _ := runOut(t, nil, "dpkg-query", "-W", "-f=${Status}", "podium")
		require.NotContains(t, out, "installed")
	})
}
