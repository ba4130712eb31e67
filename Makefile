# Podium — `make help` lists the targets.
SHELL := /bin/bash
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
# One version for `podium version` and the .deb (packaging/version.sh: from the
# VERSION file and git tags). Override: make build deb VERSION=1.2.3
ifeq ($(strip $(VERSION)),)
VERSION := $(shell bash packaging/version.sh)
endif
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 5s
# Every fuzz target: package and name.
FUZZ_TARGETS := $(shell grep -rl --include='*_test.go' '^func Fuzz' . | xargs -r grep -H '^func Fuzz' | sed -E 's|^\./([^:]*)/[^/:]*:func (Fuzz[A-Za-z0-9_]*).*|./\1 \2|' | sort -u | tr ' ' ':')

.PHONY: fresh-test fresh-smoke help deps build run test unit fuzz bench lint deb docker-nvidia clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

deps: ## install the Debian packages Podium builds and tests with (idempotent)
	@bash packaging/deps-debian.sh

build: deps ## build bin/podium
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/podium ./cmd/podium

run: build ## build and serve the embedded default config (RTMP :1935, HTTP :8080)
	./bin/podium serve

test: deps ## format check, vet + architecture fences, every test with -race (unit, integration, e2e), short fuzz runs
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	@$(MAKE) --no-print-directory lint
	$(GO) test -race -count=1 -timeout 60m ./...
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)

fuzz: ## run every fuzz target for FUZZTIME (default 5s; e.g. make fuzz FUZZTIME=2m)
	@bash scripts/fuzz.sh "$(GO)" "$(FUZZTIME)" $(FUZZ_TARGETS)

bench: build ## benchmarks against the peers (nginx-rtmp, ffmpeg); see bench/README.md
	$(GO) run ./bench/relay -podium bin/podium
	$(GO) run ./bench/transcode -podium bin/podium
	$(GO) run ./bench/forward -podium bin/podium
	$(GO) run ./bench/hls -podium bin/podium
	$(GO) run ./bench/allocator

lint: ## go vet + architecture fences (go-astiav only in transcode/ and hwaccel/, gin only in ui/, go-redis only in cluster/, ui/ cgo-free)
	$(GO) vet ./...
	@bad=$$(grep -rl --include='*.go' 'asticode/go-astiav' . | grep -v -E '^\./(transcode|hwaccel)/' || true); \
	  if [ -n "$$bad" ]; then echo "go-astiav outside transcode/ and hwaccel/: $$bad"; exit 1; fi
	@bad=$$(grep -rl --include='*.go' 'gin-gonic/gin' . | grep -v -E '^\./ui/' || true); \
	  if [ -n "$$bad" ]; then echo "gin outside ui/: $$bad"; exit 1; fi
	@bad=$$(grep -rl --include='*.go' 'redis/go-redis' . | grep -v -E '^\./cluster/' || true); \
	  if [ -n "$$bad" ]; then echo "go-redis outside cluster/: $$bad"; exit 1; fi
	@bad=$$(grep -rl --include='*.go' -E '"github.com/podiumlive/podium/(transcode|hwaccel)(/[^"]*)?"' ui || true); \
	  if [ -n "$$bad" ]; then echo "ui/ imports transcode or hwaccel (cgo; read their stats from internal/avstat): $$bad"; exit 1; fi
	@bad=$$($(GO) list -deps -test -f '{{if and (not .Standard) .CgoFiles}}{{.ImportPath}}{{end}}' ./ui/...); \
	  if [ -n "$$bad" ]; then echo "ui/ links cgo packages: $$bad"; exit 1; fi

deb: build ## build dist/podium_<version>_amd64.deb (systemd unit, /etc/podium/podium.yaml; see docs/deploy.md)
	VERSION=$(VERSION) GO=$(GO) bash packaging/deb.sh bin/podium dist

docker-nvidia: ## build the Docker image podium:nvidia (Dockerfile.nvidia; needs docker)
	docker build -f Dockerfile.nvidia --build-arg VERSION=$(VERSION) -t podium:nvidia .

fresh-test: ## make test in a clean clone on a fresh minimal Debian 12 chroot (scripts/fresh-debian.sh; root, debootstrap)
	bash scripts/fresh-debian.sh -- bash -c 'bash packaging/deps-debian.sh && make test'

fresh-smoke: ## make run's setup and a short publish/play on a fresh minimal Debian 12 chroot (what CI runs)
	bash scripts/fresh-debian.sh -- bash scripts/smoke.sh

clean: ## remove build outputs
	rm -rf bin dist
