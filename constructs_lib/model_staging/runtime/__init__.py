"""Lambda asset of the model-staging custom resource: `staging/` is its only package."""
