"""Side-by-side speed benchmarks: jaxnn vs torch vs flax/optax, in one run. See __main__.py."""
