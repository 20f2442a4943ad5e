#!/usr/bin/python3
"""The docker-compose stack's files, without a Docker engine: docker-compose.yml is valid
(`docker-compose config -q`) and has what the local stack needs, and the Dockerfile's build
stage installs exactly .ci/packages.txt, the list CI installs.

    test_compose.py REPO_ROOT
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path


def fail(what):
    print(f"FAIL {what}")
    sys.exit(1)


def main(root: Path):
    compose = shutil.which("docker-compose")
    if not compose:
        fail("docker-compose is not installed (apt-get install docker-compose)")
    done = subprocess.run([compose, "-f", str(root / "docker-compose.yml"), "config", "-q"],
                          cwd=root, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        fail(f"docker-compose config -q: exit {done.returncode}\n{done.stderr}")
    print("PASS docker-compose config -q")

    # Resolved form (variables substituted): the parts README promises.
    done = subprocess.run([compose, "-f", str(root / "docker-compose.yml"), "config"],
                          cwd=root, capture_output=True, text=True, timeout=60, check=True)
    try:
        import yaml  # python3-yaml, which docker-compose itself depends on
    except ImportError:
        fail("python3-yaml is missing")
    services = yaml.safe_load(done.stdout)["services"]
    redis, bridge = services.get("redis"), services.get("bridge")
    if not redis or not bridge:
        fail(f"services redis and bridge expected, got {sorted(services)}")
    checks = {
        "redis uses the official redis:7 image": redis.get("image") == "redis:7",
        "redis has a healthcheck": "test" in redis.get("healthcheck", {}),
        "bridge is built from the Dockerfile": bridge.get("build", {}).get("dockerfile")
        == "Dockerfile",
        "bridge waits for a healthy redis": bridge.get("depends_on", {}).get("redis", {}).get(
            "condition") == "service_healthy",
        "bridge is healthchecked with bridgectl health": "bridgectl health" in " ".join(
            bridge.get("healthcheck", {}).get("test", [])),
        "bridge publishes gRPC 50051 and HTTP 8080": {p.get("target") for p in bridge.get(
            "ports", [])} >= {50051, 8080},
        "bridge reaches redis by its service name": bridge.get("environment", {}).get(
            "BRIDGE_REDIS") == "redis://redis:6379",
        "both restart by policy": all(s.get("restart") for s in (redis, bridge)),
    }
    for what, ok in checks.items():
        if not ok:
            fail(f"docker-compose.yml: {what}\n{done.stdout}")
        print(f"PASS {what}")

    # The "cluster" profile: six nodes joined once, two Bridge replicas on the cluster with
    # sharded channels, and nginx in front of both for gRPC and HTTP.
    cluster = {name: svc for name, svc in services.items() if "cluster" in svc.get("profiles", [])}
    nodes = [n for n in cluster if n.startswith("redis-node-")]
    replicas = [cluster.get("bridge-1"), cluster.get("bridge-2")]
    lb, init = cluster.get("lb"), cluster.get("redis-cluster-init")
    if not lb or not init or not all(replicas):
        fail(f"profile cluster: lb, redis-cluster-init, bridge-1, bridge-2 expected, got {sorted(cluster)}")
    # docker-compose 1.29 resolves a short volume to "SOURCE:TARGET:MODE".
    mounts = [v.split(":") if isinstance(v, str) else [v.get("source", ""), v.get("target", "")]
              for v in lb.get("volumes", [])]
    conf_mount = next((m for m in mounts if len(m) > 1 and m[1] == "/etc/nginx/nginx.conf"), None)
    conf_file = root / "deploy" / "nginx-cluster.conf"
    conf = conf_file.read_text() if conf_file.exists() else ""
    cluster_checks = {
        "profile cluster has six cluster-enabled Redis nodes": len(nodes) == 6 and all(
            "--cluster-enabled" in cluster[n].get("command", []) for n in nodes),
        "the one-shot creates a cluster with a replica per master": "--cluster-replicas 1" in " ".join(
            init.get("command", [])) and init.get("restart") == "no",
        "the replicas wait for the cluster": all(
            r.get("depends_on", {}).get("redis-cluster-init", {}).get("condition")
            == "service_completed_successfully" for r in replicas),
        "the replicas run on the cluster with sharded channels": all(
            r.get("environment", {}).get("BRIDGE_REDIS", "").startswith("redis+cluster://")
            and r.get("environment", {}).get("BRIDGE_SHARDED_CHANNELS") for r in replicas),
        "the balancer mounts deploy/nginx-cluster.conf": conf_mount is not None
        and conf_mount[0].endswith("deploy/nginx-cluster.conf"),
        "the balancer publishes gRPC and HTTP": {p.get("target") for p in lb.get("ports", [])}
        >= {50051, 8080},
        "nginx balances gRPC over HTTP/2 and WebSockets over both replicas": all(
            f"server {r}:{port};" in conf for r in ("bridge-1", "bridge-2") for port in (50051, 8080))
        and "grpc_pass grpc://" in conf and "listen 50051 http2;" in conf
        and "proxy_set_header Upgrade $http_upgrade;" in conf,
    }
    for what, ok in cluster_checks.items():
        if not ok:
            fail(f"docker-compose.yml: {what}\n{done.stdout}")
        print(f"PASS {what}")

    # One package list: the build stage copies .ci/packages.txt in and installs from it,
    # and names no package itself.
    dockerfile = (root / "Dockerfile").read_text()
    stages = re.split(r"(?m)^FROM\s+", dockerfile)[1:]
    build = next((s for s in stages if s.startswith("debian:12 ")), None)
    if build is None:
        fail("Dockerfile: no debian:12 build stage")
    if not re.search(r"(?m)^COPY\s+\.ci/packages\.txt\s+(\S+)", build):
        fail("Dockerfile: the build stage does not COPY .ci/packages.txt")
    target = re.search(r"(?m)^COPY\s+\.ci/packages\.txt\s+(\S+)", build).group(1)
    install_runs = [r for r in re.findall(r"(?ms)^RUN\s.*?[^\\]$", build) if "apt-get install" in r]
    if len(install_runs) != 1 or target not in install_runs[0]:
        fail(f"Dockerfile: the build stage must install from {target} only:\n{install_runs}")
    listed = {l.strip() for l in (root / ".ci" / "packages.txt").read_text().splitlines()
              if l.strip() and not l.strip().startswith("#")}
    named = set(re.sub(r"apt-get install[^\n]*", "", install_runs[0]).split()) & listed
    if named:
        fail(f"Dockerfile: names packages of the list itself: {sorted(named)}")
    print("PASS the Dockerfile's build stage installs .ci/packages.txt, the list CI installs")
    runtime = stages[-1]
    if not runtime.startswith("debian:12-slim") or not re.search(r"(?m)^USER\s+(?!root)", runtime):
        fail("Dockerfile: the runtime stage must be debian:12-slim with a non-root USER")
    print("PASS the runtime stage is debian:12-slim and runs as a non-root user")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
