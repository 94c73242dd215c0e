# syntax=docker/dockerfile:1
#
# The percore image: a static percore binary at /usr/local/bin/percore and
# nothing else. Copy it into your own Node, Deno or Bun image:
#
#   COPY --from=ghcr.io/percore/percore:latest /usr/local/bin/percore /usr/local/bin/percore
#   ENTRYPOINT ["percore", "--"]
#   CMD ["node", "server.js"]
#
# Build, stamping the version that `percore version` prints:
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t percore .
#
# .dockerignore keeps .git out of the build context, so the version comes
# from the build argument ("dev" without one). The build line below must keep
# the flags examples/build_test.go checks: CGO_ENABLED=0, -trimpath and
# -ldflags "-s -w -X main.version=${VERSION}".

ARG GO_VERSION=1.26
# GO_IMAGE names another Go image, e.g. a mirror's; examples/container_linux_test.go
# builds this file from a Go image made of the machine's own toolchain.
ARG GO_IMAGE=golang:${GO_VERSION}

# The build runs on the builder's own platform and cross-compiles for the
# target, so a multi-platform build (--platform linux/amd64,linux/arm64)
# needs no emulation.
FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
ARG TARGETOS TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/percore ./cmd/percore

FROM scratch
COPY --from=build /out/percore /usr/local/bin/percore
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/percore"]
CMD ["--help"]
