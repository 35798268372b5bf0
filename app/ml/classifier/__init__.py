"""Multi-label chest X-ray classifiers: one sigmoid per finding (a CheXNet DenseNet-121 or a small CNN)."""
