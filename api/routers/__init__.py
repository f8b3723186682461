"""Routers of the service: one module per group of routes, each exposing ``router``."""
