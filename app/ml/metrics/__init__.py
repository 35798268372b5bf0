"""Image-set metrics: Fréchet distances (FID and a domain distance from the project's classifier)."""
