# Tentacle server image. Nothing is built or downloaded here: the build
# context must hold a static linux binary named tentacle-server, e.g.
#   make build                                   # CGO_ENABLED=0: bin/tentacle-server is static
#   mkdir -p /tmp/ctx && cp bin/tentacle-server /tmp/ctx/
#   docker build -f install/server.Dockerfile -t tentacle-server /tmp/ctx
# No CA certificates: the server makes no outbound TLS connections.

# An empty /data, copied below with the runtime user as owner so that a new
# named volume mounted there is writable by that user.
FROM scratch AS datadir
WORKDIR /data

FROM scratch
COPY tentacle-server /tentacle-server
COPY --from=datadir --chown=65532:65532 /data /data
USER 65532:65532
VOLUME /data
EXPOSE 8443
ENTRYPOINT ["/tentacle-server", "serve", "--data-dir", "/data", "--listen", ":8443"]
