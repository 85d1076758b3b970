"""Docker runtime: images, networks, containers, readiness and exec."""
