# evac: one static binary on an empty image, built from source (needs the
# golang image and the module proxy; deploy/docker/Dockerfile builds from the
# binary `make build` made instead, with nothing to pull).
#   docker build -t evac --build-arg VERSION=$(git describe --tags --always) .
# A controller (config, keys and certificates mounted read-only, state in a volume):
#   docker run -d --name evac1 --network host \
#     -v /etc/evac:/etc/evac:ro -v evac1-data:/var/lib/evac \
#     evac server --config /etc/evac/server.yaml
# An agent: docker run -d --network host -v /etc/evac:/etc/evac:ro evac agent --config /etc/evac/agent.yaml
# (evac dev binds many loopback addresses in one process: run it from the binary, not in a container.)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/evac-sh/evac/internal/buildinfo.Version=${VERSION}" \
      -o /out/evac ./cmd/evac \
 && mkdir -p /out/data /out/tmp \
 && chown 65532:65532 /out/data \
 && chmod 1777 /out/tmp

FROM scratch
# CA roots for agents' HTTPS checks; /tmp for `evac dev`'s temporary data.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/tmp /tmp
COPY --from=build /out/data /var/lib/evac
COPY --from=build /out/evac /usr/local/bin/evac
USER 65532:65532
VOLUME ["/var/lib/evac"]
# admin API, DNS, Raft, gossip
EXPOSE 8080/tcp 5353/udp 5353/tcp 7300/tcp 7946/tcp 7946/udp
ENTRYPOINT ["/usr/local/bin/evac"]
CMD ["--help"]
