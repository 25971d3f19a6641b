# Spooky as a container image: one compiled executable (`bun build --compile`, Bun inside) on a small
# glibc base, run as a non-root user.
#   docker build -t spooky:0.1.0 .
#   docker run --rm -p 8443:8443/tcp -p 8443:8443/udp -v "$PWD/conf:/etc/spooky:ro" spooky:0.1.0 \
#     run --config /etc/spooky/spooky.yaml
# BUN_VERSION is the version package.json pins (its dependency `bun`); test/integration/helm-chart.test.ts checks they agree.
ARG BUN_VERSION=1.4.5

FROM oven/bun:${BUN_VERSION} AS build
WORKDIR /src
# The repository's lockfile is npm's package-lock.json; Bun reads it (and with --frozen-lockfile refuses
# to install when package.json and the lockfile disagree). Lifecycle scripts are not needed to bundle.
COPY package.json package-lock.json ./
RUN bun install --frozen-lockfile --production --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
RUN bun build --compile src/main.ts --outfile /out/spooky && /out/spooky --version

# The executable links only against glibc (libc, libm, libpthread, libdl); distroless "cc" has it, runs as
# user 65532 ("nonroot") and has no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/spooky /usr/local/bin/spooky
USER 65532:65532
# Traffic: TCP (HTTP/1.1, HTTP/2) and UDP (HTTP/3) on one port; admin: probes and metrics.
EXPOSE 8443/tcp 8443/udp 9901/tcp
ENTRYPOINT ["/usr/local/bin/spooky"]
CMD ["run", "--config", "/etc/spooky/spooky.yaml"]
