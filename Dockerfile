# syntax=docker/dockerfile:1
#
# One image holding bmcstream's three programs and a health-check probe, all
# static binaries in /usr/local/bin: poller, gateway, bmcsim, healthcheck.
# A container runs the one its command names, as deploy/compose does:
#
#   docker build -t bmcstream:local .
#   docker run --rm bmcstream:local /usr/local/bin/poller --help
#
# The final stage is distroless/static: no shell, no package manager, a
# non-root user (65532). /etc/bmcstream/sim exists, owned by that user, so
# that a fresh named volume mounted there is writable by bmcsim.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# The version --version and bmcstream_build_info report; a release build passes
# --build-arg VERSION=$(git describe --tags --always --dirty) (the image has no .git).
ARG VERSION=devel
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath \
      -ldflags="-s -w -X github.com/bmcstream/bmcstream/internal/version.Version=${VERSION}" \
      -o /out/usr/local/bin/ ./cmd/poller ./cmd/gateway ./cmd/bmcsim ./deploy/healthcheck \
 && mkdir -p /out/etc/bmcstream/sim

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/usr/local/bin/ /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/etc/bmcstream/ /etc/bmcstream/
USER 65532:65532
# The pollers' and the gateway's /metrics; bmcsim's admin API.
EXPOSE 9290 9291 9390
CMD ["/usr/local/bin/poller", "--help"]
