"""Shipping: manifests, ``compress pack``/``verify`` bundles, and the runtime that loads a bundle anywhere."""
