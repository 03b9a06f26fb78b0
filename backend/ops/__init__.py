"""Running the service: worker heartbeats, health and readiness, ``flask doctor``, backup and restore."""
