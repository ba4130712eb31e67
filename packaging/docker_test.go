// Package packaging holds only tests: of the .deb (built, installed with
// dpkg, checked, purged), of Dockerfile.nvidia and compose.yaml (Docker
// cannot run on CI, so their invariants are checked by reading them), and
// of the scripts both use.
package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// repoRoot is the repository root (tests run in packaging/).
const repoRoot = ".."

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, ...
	Args string
	Line int
}

// stage is a FROM and the instructions up to the next FROM.
type stage struct {
	Base, Name string
	Instrs     []instruction
}

// parseDockerfile splits a Dockerfile into stages. It understands what
// Dockerfile.nvidia uses: comments, blank lines and backslash continuations
// (comment lines inside a continuation are dropped, as docker does).
func parseDockerfile(t *testing.T, text string) []stage {
	t.Helper()
	var (
		stages []stage
		cur    strings.Builder
		start  int
	)
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start}
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			st := stage{Base: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.Name = f[2]
			}
			stages = append(stages, st)
			return
		}
		require.NotEmpty(t, stages, "line %d: %s before any FROM", start, in.Cmd)
		stages[len(stages)-1].Instrs = append(stages[len(stages)-1].Instrs, in)
	}
	for i, raw := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(raw)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

// all returns the arguments of every instruction cmd in st.
func (st stage) all(cmd string) []string {
	var out []string
	for _, in := range st.Instrs {
		if in.Cmd == cmd {
			out = append(out, in.Args)
		}
	}
	return out
}

// envs parses ENV k=v pairs (quotes stripped).
func (st stage) envs() map[string]string {
	env := map[string]string{}
	for _, a := range st.all("ENV") {
		for _, kv := range strings.Fields(a) {
			k, v, ok := strings.Cut(kv, "=")
			if ok {
				env[k] = strings.Trim(v, `"'`)
			}
		}
	}
	return env
}

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	require.NoError(t, err)
	return string(b)
}

// goDirective is go.mod's go version, e.g. "1.26.8".
func goDirective(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(readRepoFile(t, "go.mod"))
	require.NotNil(t, m, "go.mod has no go directive")
	return m[1]
}

func TestDockerfileNvidia(t *testing.T) {
	stages := parseDockerfile(t, readRepoFile(t, "Dockerfile.nvidia"))
	require.Len(t, stages, 2, "a build stage and a runtime stage")
	build, rt := stages[0], stages[1]

	t.Run("build stage is CI's build", func(t *testing.T) {
		require.Equal(t, "build", build.Name)
		require.Equal(t, "golang:"+goDirective(t)+"-bookworm", build.Base,
			"the build stage is Debian 12 (bookworm, like CI) with go.mod's Go")
		runs := strings.Join(build.all("RUN"), "\n")
		require.Contains(t, runs, "bash packaging/deps-debian.sh", "the same deps script as CI")
		require.Regexp(t, `(?m)\bmake build\b`, runs, "the same make build as CI")
		require.Regexp(t, `(?m)\bmake build deb\b`, runs, "the runtime stage installs the tested .deb")
		require.NotContains(t, runs, "go build", "no build path besides make's")
		require.Contains(t, build.all("ARG"), "VERSION")
	})

	t.Run("runtime stage", func(t *testing.T) {
		require.Equal(t, "debian:12-slim", rt.Base)
		require.Empty(t, rt.Name)
		copies := rt.all("COPY")
		require.Contains(t, copies, "--from=build /podium.deb /tmp/podium.deb")
		runs := strings.Join(rt.all("RUN"), "\n")
		require.Regexp(t, `apt-get install -y --no-install-recommends /tmp/podium\.deb`, runs,
			"apt installs the .deb with its Depends (the libav runtime libraries)")
		require.Contains(t, runs, "rm -rf /var/lib/apt/lists/*")
		// Sources of plain COPYs exist in the repository.
		for _, c := range copies {
			if strings.HasPrefix(c, "--from=") {
				continue
			}
			f := strings.Fields(c)
			for _, src := range f[:len(f)-1] {
				_, err := os.Stat(filepath.Join(repoRoot, src))
				require.NoError(t, err, "COPY %s", c)
			}
		}

		env := rt.envs()
		require.Equal(t, "all", env["NVIDIA_VISIBLE_DEVICES"])
		caps := strings.Split(env["NVIDIA_DRIVER_CAPABILITIES"], ",")
		for _, c := range []string{"compute", "video", "utility"} {
			require.Contains(t, caps, c, "NVIDIA_DRIVER_CAPABILITIES: NVENC needs video, CUDA compute")
		}

		var ports []string
		for _, e := range rt.all("EXPOSE") {
			ports = append(ports, strings.Fields(e)...)
		}
		require.ElementsMatch(t, []string{"1935", "8080"}, ports)

		require.Equal(t, []string{"/var/lib/podium"}, rt.all("VOLUME"))
		users := rt.all("USER")
		require.Len(t, users, 1)
		require.NotContains(t, []string{"", "root", "0", "0:0"}, users[0], "runs as non-root")
		require.Equal(t, "podium", users[0], "the user the .deb's postinst creates")
		// USER comes after every RUN (a RUN after it could not apt-get).
		lastRun, userAt := 0, 0
		for i, in := range rt.Instrs {
			switch in.Cmd {
			case "RUN":
				lastRun = i
			case "USER":
				userAt = i
			}
		}
		require.Greater(t, userAt, lastRun)

		hc := rt.all("HEALTHCHECK")
		require.Len(t, hc, 1)
		require.Regexp(t, `CMD \["/usr/local/bin/podium-healthcheck"\]$`, hc[0])
		require.Contains(t, copies, "packaging/healthcheck.sh /usr/local/bin/podium-healthcheck",
			"the health check is the tested script (healthcheck_test.go)")
		require.Equal(t, []string{`["/usr/bin/podium"]`}, rt.all("ENTRYPOINT"))
		require.Equal(t, []string{`["serve", "--config", "/etc/podium/podium.yaml"]`}, rt.all("CMD"))
	})

	t.Run("dockerignore keeps build outputs out", func(t *testing.T) {
		lines := strings.Fields(readRepoFile(t, "Dockerfile.nvidia.dockerignore"))
		for _, p := range []string{".git", "bin", "dist"} {
			require.Contains(t, lines, p)
		}
	})

	t.Run("Makefile builds it", func(t *testing.T) {
		require.Regexp(t, `(?m)^\tdocker build -f Dockerfile\.nvidia --build-arg VERSION=\$\(VERSION\) `,
			readRepoFile(t, "Makefile"))
	})
}

// composeFile is the part of compose.yaml the test reads.
type composeFile struct {
	Name     string `yaml:"name"`
	Services map[string]struct {
		Profiles []string `yaml:"profiles"`
		Image    string   `yaml:"image"`
		Build    struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Restart     string            `yaml:"restart"`
		Ports       []string          `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
		Devices     []string          `yaml:"devices"`
		GroupAdd    []string          `yaml:"group_add"`
		Environment map[string]string `yaml:"environment"`
		Deploy      struct {
			Resources struct {
				Reservations struct {
					Devices []struct {
						Driver       string   `yaml:"driver"`
						Count        any      `yaml:"count"`
						Capabilities []string `yaml:"capabilities"`
					} `yaml:"devices"`
				} `yaml:"reservations"`
			} `yaml:"resources"`
		} `yaml:"deploy"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func TestCompose(t *testing.T) {
	var c composeFile
	dec := yaml.NewDecoder(strings.NewReader(readRepoFile(t, "packaging/compose.yaml")))
	dec.KnownFields(true) // a misspelt key fails here, not on the customer's box
	require.NoError(t, dec.Decode(&c))
	require.Len(t, c.Services, 2)
	require.Contains(t, c.Volumes, "podium-data")

	var nvidia, vaapi bool
	for name, s := range c.Services {
		require.Len(t, s.Profiles, 1, name)
		require.Equal(t, "always", s.Restart, name)
		require.ElementsMatch(t, []string{"1935:1935", "8080:8080"}, s.Ports, name)
		require.Contains(t, s.Volumes, "podium-data:/var/lib/podium", name)
		require.Equal(t, "Dockerfile.nvidia", s.Build.Dockerfile, name)
		_, err := os.Stat(filepath.Join(repoRoot, "packaging", s.Build.Context, s.Build.Dockerfile))
		require.NoError(t, err, "%s: build context is the repository root", name)

		for _, d := range s.Deploy.Resources.Reservations.Devices {
			if d.Driver == "nvidia" {
				nvidia = true
				require.Subset(t, d.Capabilities, []string{"gpu", "video"}, "%s: video = NVENC/NVDEC", name)
				require.Equal(t, "all", d.Count, name)
			}
		}
		if slices.Contains(s.Devices, "/dev/dri:/dev/dri") {
			vaapi = true
			require.Contains(t, s.GroupAdd, "${RENDER_GID:-render}", "%s: the host's render group", name)
			require.Equal(t, "/dev/dri/renderD128", s.Environment["PODIUM_HWACCEL_DEVICE"], name)
		}
	}
	require.True(t, nvidia, "a service reserves the NVIDIA GPU (deploy.resources.reservations.devices)")
	require.True(t, vaapi, "a service maps /dev/dri")
}
